//! Crash safety: SIGKILL in the middle of a burst of concurrent edits. After a restart every
//! file parses and equals the projection, and every acknowledged edit is there.

use crate::support::app::{Gaze, sample_data};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_concurrent_edits_loses_no_acknowledged_edit() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    let (_, list) = g.get("/api/library/characters").await;
    let slugs: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect();
    assert!(slugs.len() >= 8);
    // One writer task per entry, each editing its entry with an increasing counter.
    let acked: Vec<Arc<AtomicU64>> = slugs.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut tasks = Vec::new();
    for (slug, ack) in slugs.iter().zip(&acked) {
        let url = format!("{}/api/library/characters/{slug}", g.url);
        let http = g.http.clone();
        let ack = ack.clone();
        tasks.push(tokio::spawn(async move {
            for n in 1u64.. {
                let body = serde_json::json!({"character_name": format!("edit {n}"), "n": n});
                match http.put(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => ack.store(n, Ordering::SeqCst),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    g.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let total: u64 = acked.iter().map(|a| a.load(Ordering::SeqCst)).sum();
    assert!(
        total > 20,
        "the burst made progress before the kill ({total} edits)"
    );

    g.spawn();
    for (slug, ack) in slugs.iter().zip(&acked) {
        let (status, v) = g.get(&format!("/api/library/characters/{slug}")).await;
        assert_eq!(status, 200, "{slug}");
        let file = g
            .data()
            .join("characters")
            .join(v["file"].as_str().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        let on_disk: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{slug} does not parse: {e}"));
        assert_eq!(on_disk, v["data"], "{slug}: the file equals the projection");
        let n = v["data"]["n"].as_u64().unwrap_or(0);
        let acked = ack.load(Ordering::SeqCst);
        // The one edit in flight at the kill may or may not have committed.
        assert!(
            n == acked || n == acked + 1,
            "{slug}: acknowledged {acked}, found {n}"
        );
    }
    let (_, f) = g.get("/api/failures").await;
    assert_eq!(f["failures"], serde_json::json!([]));
    let (_, v) = g.post("/api/rescan", "").await;
    assert_eq!(
        v["events"], 0,
        "after recovery the disk agrees with the ledger"
    );
}
