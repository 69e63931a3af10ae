//! The ComfyUI client (`gaze::jobs::comfy`) against the stand-in ComfyUI: submission, lookup before
//! resubmission, outcomes, cancelling, outages and live progress.

use std::time::Duration;

use gaze::jobs::comfy::{Backend, ComfyError, Known, Outcome, Progress, prompt_id_for};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::support::comfy_standin::{self, Mode, StandIn, StandInConfig};

const CKPT: &str = "Illustrious/waiIllustriousSDXL_v140.safetensors";
const WAIT: Duration = Duration::from_secs(10);

/// A small valid graph: CheckpointLoaderSimple → CLIPTextEncode ×2 → KSampler → VAEDecode →
/// SaveImage (node 9). The seed makes graphs distinct (ComfyUI caches identical ones).
fn graph(seed: u64, ckpt: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "1girl, smile", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "lowres", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": seed, "steps": 20, "cfg": 6.0,
            "sampler_name": "euler_ancestral", "scheduler": "normal",
            "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "gaze/test"}},
    })
}

/// A fresh job's prompt id.
fn new_id() -> String {
    prompt_id_for(ulid::Ulid::generate().0)
}

async fn standin(exec_ms: u64) -> (StandIn, Backend) {
    let s = comfy_standin::start(StandInConfig {
        exec_time: Duration::from_millis(exec_ms),
        ..StandInConfig::default()
    })
    .await;
    let b = Backend::new(&format!("{}/", s.url())).expect("backend");
    (s, b)
}

/// Polls `lookup` until the prompt is finished.
async fn finished(b: &Backend, id: &str) -> Outcome {
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        if let Known::Finished(o) = b.lookup(id).await.expect("lookup") {
            return o;
        }
        assert!(tokio::time::Instant::now() < end, "{id} did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the stand-in runs this prompt.
async fn until_running(s: &StandIn, id: &str) {
    let end = tokio::time::Instant::now() + WAIT;
    while s.running().as_deref() != Some(id) {
        assert!(tokio::time::Instant::now() < end, "{id} never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next event within the wait, or a panic naming what was expected.
async fn next_event(rx: &mut mpsc::UnboundedReceiver<Progress>, what: &str) -> Progress {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(p)) => p,
        Ok(None) => panic!("progress channel closed while waiting for {what}"),
        Err(_) => panic!("no progress event while waiting for {what}"),
    }
}

/// Events up to and including `Finished` for this prompt.
async fn events_until_finished(
    rx: &mut mpsc::UnboundedReceiver<Progress>,
    id: &str,
) -> Vec<Progress> {
    let mut seen = Vec::new();
    loop {
        let p = next_event(rx, "Finished").await;
        let done = p
            == Progress::Finished {
                prompt_id: id.to_string(),
            };
        seen.push(p);
        if done {
            return seen;
        }
    }
}

/// Waits for the `status` frame a (re)connected socket gets first.
async fn until_connected(rx: &mut mpsc::UnboundedReceiver<Progress>) {
    loop {
        if let Progress::Queue { .. } = next_event(rx, "the connect status").await {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_lookup_moves_pending_running_finished_and_view_returns_png() {
    let (s, b) = standin(400).await;
    let (a_id, b_id) = (new_id(), new_id());
    let sub = b
        .submit(&graph(1, CKPT), &a_id, "gaze-it")
        .await
        .expect("submit a");
    assert_eq!(sub.prompt_id, a_id, "the server keeps our canonical UUID");
    assert!(sub.node_errors.is_empty());
    assert_eq!(
        s.received(&a_id),
        Some(graph(1, CKPT)),
        "workflow sent verbatim"
    );
    b.submit(&graph(2, CKPT), &b_id, "gaze-it")
        .await
        .expect("submit b");
    until_running(&s, &a_id).await;

    assert_eq!(b.lookup(&a_id).await.expect("lookup a"), Known::Running);
    assert_eq!(b.lookup(&b_id).await.expect("lookup b"), Known::Pending);
    assert_eq!(b.history(&b_id).await.expect("history b"), None);
    let q = b.queue().await.expect("queue");
    assert_eq!(q.running, [a_id.as_str()]);
    assert_eq!(q.pending, [b_id.as_str()]);

    for id in [&a_id, &b_id] {
        let Outcome::Success { images } = finished(&b, id).await else {
            panic!("{id} did not succeed");
        };
        assert_eq!(images.len(), 1);
        let img = &images[0];
        assert_eq!(img.node_id, "9");
        assert_eq!(img.subfolder, "gaze");
        assert_eq!(img.kind, "output");
        assert!(img.filename.starts_with("test_") && img.filename.ends_with("_.png"));
        let bytes = b.view(img).await.expect("view");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    }
    assert_eq!(s.posts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_of_unknown_id_is_unknown() {
    let (_s, b) = standin(50).await;
    assert_eq!(b.lookup(&new_id()).await.expect("lookup"), Known::Unknown);
    assert_eq!(b.history(&new_id()).await.expect("history"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_prompt_is_not_posted_again() {
    let (s, b) = standin(300).await;
    let id = new_id();
    // What the reactor does before any (re)submission: post only when ComfyUI does not know it.
    let submit_once = |b: Backend, id: String| async move {
        match b.lookup(&id).await.expect("lookup") {
            Known::Unknown => {
                b.submit(&graph(7, CKPT), &id, "gaze-it")
                    .await
                    .expect("submit");
                true
            }
            _ => false,
        }
    };
    assert!(
        submit_once(b.clone(), id.clone()).await,
        "first time: posted"
    );
    // A restarted app asks again while it is queued or running, and after it finished.
    assert!(!submit_once(b.clone(), id.clone()).await);
    assert!(matches!(finished(&b, &id).await, Outcome::Success { .. }));
    assert!(!submit_once(b.clone(), id.clone()).await);
    assert_eq!(s.posts(), 1);
    assert_eq!(s.executions(&id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_rejected_with_node_and_input() {
    let (s, b) = standin(50).await;
    let err = b
        .submit(&graph(1, "Illustrious/missing.safetensors"), &new_id(), "c")
        .await
        .expect_err("missing checkpoint");
    let ComfyError::Rejected { kind, nodes, .. } = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(kind, "prompt_outputs_failed_validation");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node_id, "4");
    assert_eq!(nodes[0].class_type, "CheckpointLoaderSimple");
    assert_eq!(nodes[0].kind, "value_not_in_list");
    assert_eq!(nodes[0].input.as_deref(), Some("ckpt_name"));
    let summary = err.summary();
    assert!(
        summary.starts_with("node 4 (CheckpointLoaderSimple) ckpt_name: Value not in list: ckpt_name: 'Illustrious/missing.safetensors' not in"),
        "{summary}"
    );
    assert!(!err.retryable());

    let mut unknown = graph(2, CKPT);
    unknown["11"] = json!({"class_type": "NoSuchNode", "inputs": {}});
    let err = b
        .submit(&unknown, &new_id(), "c")
        .await
        .expect_err("unknown class");
    assert!(
        matches!(&err, ComfyError::Rejected { kind, .. } if kind == "invalid_prompt"),
        "{err:?}"
    );
    assert!(err.summary().contains("NoSuchNode"), "{}", err.summary());

    let err = b
        .submit(&graph(3, CKPT), "not-a-uuid", "c")
        .await
        .expect_err("bad id");
    assert!(
        matches!(&err, ComfyError::Rejected { kind, .. } if kind == "invalid_prompt_id"),
        "{err:?}"
    );
    assert_eq!(s.posts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_failure_is_finished_failed() {
    let (s, b) = standin(50).await;
    s.fail_next(1, "CUDA out of memory");
    let id = new_id();
    b.submit(&graph(1, CKPT), &id, "c").await.expect("submit");
    let outcome = finished(&b, &id).await;
    let Outcome::Failed {
        node_id,
        node_type,
        exception_type,
        message,
    } = &outcome
    else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert_eq!(node_id.as_deref(), Some("4"));
    assert_eq!(node_type.as_deref(), Some("CheckpointLoaderSimple"));
    assert_eq!(exception_type, "RuntimeError");
    assert!(message.contains("CUDA out of memory"), "{message}");
    assert_eq!(
        outcome.summary(),
        "node 4 (CheckpointLoaderSimple) RuntimeError: CUDA out of memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_stops_the_running_prompt() {
    let (s, b) = standin(5_000).await;
    let id = new_id();
    b.submit(&graph(1, CKPT), &id, "c").await.expect("submit");
    until_running(&s, &id).await;
    b.interrupt(&id).await.expect("interrupt");
    let outcome = finished(&b, &id).await;
    assert!(
        matches!(&outcome, Outcome::Interrupted { node_id: Some(_) }),
        "{outcome:?}"
    );
    assert!(s.wait_idle(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pending_removes_a_queued_prompt_and_cancel_finds_it() {
    let (s, b) = standin(3_000).await;
    let (a_id, b_id, c_id) = (new_id(), new_id(), new_id());
    b.submit(&graph(1, CKPT), &a_id, "c")
        .await
        .expect("submit a");
    b.submit(&graph(2, CKPT), &b_id, "c")
        .await
        .expect("submit b");
    b.submit(&graph(3, CKPT), &c_id, "c")
        .await
        .expect("submit c");
    until_running(&s, &a_id).await;
    assert_eq!(s.queue_len(), 3);

    b.delete_pending(&b_id).await.expect("delete");
    assert_eq!(s.queue_len(), 2);
    assert_eq!(b.lookup(&b_id).await.expect("lookup b"), Known::Unknown);
    // Deleting a running prompt does nothing.
    b.delete_pending(&a_id).await.expect("delete running");
    assert_eq!(b.lookup(&a_id).await.expect("lookup a"), Known::Running);

    // cancel: the pending one is deleted, the running one interrupted.
    assert_eq!(b.cancel(&c_id).await.expect("cancel c"), Known::Unknown);
    assert_eq!(s.queue_len(), 1);
    assert_eq!(b.cancel(&a_id).await.expect("cancel a"), Known::Running);
    assert!(matches!(
        finished(&b, &a_id).await,
        Outcome::Interrupted { .. }
    ));
    assert!(s.wait_idle(WAIT).await);
    for gone in [&b_id, &c_id] {
        assert_eq!(b.history(gone).await.expect("history"), None);
        assert_eq!(s.executions(gone), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_unreachable_then_the_same_backend_recovers() {
    let (s, b) = standin(50).await;
    b.system_stats().await.expect("up");
    s.go_down().await;
    for err in [
        b.system_stats().await.expect_err("down"),
        b.lookup(&new_id()).await.expect_err("down"),
        b.submit(&graph(1, CKPT), &new_id(), "c")
            .await
            .expect_err("down"),
    ] {
        assert!(matches!(err, ComfyError::Unreachable(_)), "{err:?}");
        assert!(err.retryable());
        assert!(err.summary().starts_with("ComfyUI unreachable"));
    }
    s.come_up().await;
    let stats = b.system_stats().await.expect("up again");
    assert_eq!(stats.comfyui_version.as_deref(), Some("0.3.64"));
    assert_eq!(stats.devices, ["cpu"]);
    let id = new_id();
    b.submit(&graph(2, CKPT), &id, "c").await.expect("submit");
    assert!(matches!(finished(&b, &id).await, Outcome::Success { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_garbage_are_retryable() {
    let (s, b) = standin(50).await;
    let img = gaze::jobs::comfy::ImageRef {
        node_id: "9".into(),
        filename: "x_00001_.png".into(),
        subfolder: String::new(),
        kind: "output".into(),
    };
    s.set_mode(Mode::Error500);
    let errs = [
        b.system_stats().await.map(|_| ()),
        b.has_node("KSampler").await.map(|_| ()),
        b.models("checkpoints").await.map(|_| ()),
        b.submit(&graph(1, CKPT), &new_id(), "c").await.map(|_| ()),
        b.lookup(&new_id()).await.map(|_| ()),
        b.view(&img).await.map(|_| ()),
        b.interrupt(&new_id()).await,
        b.delete_pending(&new_id()).await,
    ];
    for e in errs {
        let e = e.expect_err("500");
        assert!(
            matches!(&e, ComfyError::Server { status: 500, body } if body.contains("Server got itself in trouble")),
            "{e:?}"
        );
        assert!(e.retryable());
    }
    s.set_mode(Mode::Garbage);
    let errs = [
        b.system_stats().await.map(|_| ()),
        b.has_node("KSampler").await.map(|_| ()),
        b.models("checkpoints").await.map(|_| ()),
        b.submit(&graph(1, CKPT), &new_id(), "c").await.map(|_| ()),
        b.history(&new_id()).await.map(|_| ()),
        b.queue().await.map(|_| ()),
        b.lookup(&new_id()).await.map(|_| ()),
        b.view(&img).await.map(|_| ()),
    ];
    for e in errs {
        let e = e.expect_err("garbage");
        assert!(matches!(&e, ComfyError::Garbage(_)), "{e:?}");
        assert!(e.retryable());
    }
    s.set_mode(Mode::Normal);
    assert_eq!(s.posts(), 0);
    b.system_stats().await.expect("normal again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_forget_makes_lookup_unknown() {
    let (s, b) = standin(50).await;
    let done = new_id();
    b.submit(&graph(1, CKPT), &done, "c").await.expect("submit");
    assert!(matches!(finished(&b, &done).await, Outcome::Success { .. }));
    s.set_exec_time(Duration::from_secs(5));
    let running = new_id();
    b.submit(&graph(2, CKPT), &running, "c")
        .await
        .expect("submit");
    until_running(&s, &running).await;

    s.restart_forget();
    assert_eq!(b.lookup(&done).await.expect("lookup"), Known::Unknown);
    assert_eq!(b.lookup(&running).await.expect("lookup"), Known::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_node_follows_the_impact_pack() {
    let (s, b) = standin(50).await;
    s.set_impact_pack(false);
    assert!(!b.has_node("FaceDetailer").await.expect("has_node"));
    assert!(
        !b.has_node("UltralyticsDetectorProvider")
            .await
            .expect("has_node")
    );
    assert!(b.has_node("KSampler").await.expect("has_node"));
    s.set_impact_pack(true);
    assert!(b.has_node("FaceDetailer").await.expect("has_node"));
    assert!(
        b.has_node("UltralyticsDetectorProvider")
            .await
            .expect("has_node")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_folders() {
    let (s, b) = standin(50).await;
    let config = StandInConfig::default();
    let mut ckpts = config.checkpoints.clone();
    ckpts.sort();
    assert_eq!(b.models("checkpoints").await.expect("checkpoints"), ckpts);
    let loras = b.models("loras").await.expect("loras");
    assert_eq!(loras.len(), config.loras.len());
    assert!(loras.contains(&"Illustrious/Looks/glossy_skin.safetensors".to_string()));
    assert_eq!(
        b.models("embeddings").await.expect("embeddings"),
        Vec::<String>::new()
    );
    s.set_checkpoints(vec!["new.safetensors".into()]);
    assert_eq!(
        b.models("checkpoints").await.expect("rescanned"),
        ["new.safetensors"]
    );
    let err = b.models("no_such_folder").await.expect_err("404");
    assert!(matches!(err, ComfyError::NotFound(_)), "{err:?}");
    assert!(!err.retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_of_a_missing_file_is_not_found() {
    let (_s, b) = standin(50).await;
    let img = gaze::jobs::comfy::ImageRef {
        node_id: "9".into(),
        filename: "nope_00001_.png".into(),
        subfolder: "gaze".into(),
        kind: "output".into(),
    };
    let err = b.view(&img).await.expect_err("404");
    assert!(matches!(err, ComfyError::NotFound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_progress_reports_a_run_and_reconnects() {
    let (s, b) = standin(200).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let watcher = b.watch_progress("gaze-watch", tx, async move {
        let _ = stop_rx.await;
    });
    until_connected(&mut rx).await;

    let check_run = |events: &[Progress], id: &str| {
        let pos = |f: &dyn Fn(&Progress) -> bool| events.iter().position(f);
        let started = pos(&|p| matches!(p, Progress::Started { prompt_id } if prompt_id == id));
        let executing = pos(
            &|p| matches!(p, Progress::Executing { prompt_id, node } if prompt_id == id && node == "3"),
        );
        let step = pos(&|p| {
            matches!(p, Progress::Step { prompt_id, node: Some(n), value, max }
                if prompt_id == id && n == "3" && *value >= 1 && *value <= *max && *max == 20)
        });
        let last = events.len() - 1;
        let (Some(started), Some(executing), Some(step)) = (started, executing, step) else {
            panic!("missing Started/Executing/Step for {id}: {events:?}");
        };
        assert!(
            started < executing && executing < step && step < last,
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|p| matches!(p, Progress::Error { .. } | Progress::Interrupted { .. })),
            "{events:?}"
        );
    };

    let first = new_id();
    b.submit(&graph(1, CKPT), &first, "gaze-watch")
        .await
        .expect("submit");
    let events = events_until_finished(&mut rx, &first).await;
    check_run(&events, &first);

    // The socket is cut and the server refuses connections for a while: the watcher retries.
    s.go_down().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.come_up().await;
    until_connected(&mut rx).await;
    let second = new_id();
    b.submit(&graph(2, CKPT), &second, "gaze-watch")
        .await
        .expect("submit after reconnect");
    let events = events_until_finished(&mut rx, &second).await;
    check_run(&events, &second);

    // A failure arrives as Error before Finished.
    s.fail_next(1, "boom");
    let third = new_id();
    b.submit(&graph(3, CKPT), &third, "gaze-watch")
        .await
        .expect("submit");
    let events = events_until_finished(&mut rx, &third).await;
    assert!(
        events.iter().any(|p| matches!(p, Progress::Error { prompt_id, message }
            if prompt_id == &third && message == "node 4 (CheckpointLoaderSimple) RuntimeError: boom")),
        "{events:?}"
    );

    // Another client's prompt is not reported here.
    let other = new_id();
    b.submit(&graph(4, CKPT), &other, "someone-else")
        .await
        .expect("submit");
    assert!(s.wait_idle(WAIT).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Ok(p) = rx.try_recv() {
        assert!(
            !matches!(&p, Progress::Started { prompt_id } | Progress::Finished { prompt_id } if prompt_id == &other),
            "{p:?}"
        );
    }

    stop_tx.send(()).expect("stop");
    tokio::time::timeout(WAIT, watcher)
        .await
        .expect("watcher stops")
        .expect("watcher task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_progress_ends_when_the_receiver_is_dropped() {
    let (s, b) = standin(50).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = b.watch_progress("gaze-drop", tx, std::future::pending());
    until_connected(&mut rx).await;
    drop(rx);
    tokio::time::timeout(WAIT, watcher)
        .await
        .expect("watcher stops")
        .expect("watcher task");
    // Also while the server is down (the watcher is sleeping between retries).
    let (tx, rx) = mpsc::unbounded_channel();
    s.go_down().await;
    let watcher = b.watch_progress("gaze-drop", tx, std::future::pending());
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(rx);
    tokio::time::timeout(WAIT, watcher)
        .await
        .expect("watcher stops while down")
        .expect("watcher task");
}
