//! The jobs projection: a pure fold of job events into each unfinished job's state, the queue in
//! request order, the ids of finished jobs by outcome, the pause switch and the endless
//! sessions. The reactor reads it to decide what to do; the API reads it for status. Finished
//! jobs are kept as ids only and read back from their events (`fold_job`), so memory stays
//! bounded with a million of them.

use crate::library::category::Category;
use crate::store::event::{Event, JobSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a backend (never sent, or sent and forgotten, or retrying after a failure).
    Queued,
    /// Handed to a backend; the reactor watches it there.
    Submitted,
    Succeeded,
    /// Failed for good (a validation error: it will never pass as it is).
    Failed,
    /// Failed the same way too often; kept, not retried.
    SetAside,
    Cancelled,
}

impl JobState {
    /// The original's status words: pending, running, done, failed, cancelled.
    pub fn status(self) -> &'static str {
        match self {
            JobState::Queued => "pending",
            JobState::Submitted => "running",
            JobState::Succeeded => "done",
            JobState::Failed | JobState::SetAside => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Submitted)
    }
}

/// What the projection keeps of a job's spec: everything but the recipe and request, which stay
/// in the ledger (`Handle::job_spec`) so memory and snapshots do not grow with every workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    pub label: String,
    pub target: Option<(Category, String)>,
    pub set_cover: bool,
    pub batch: Option<u128>,
    pub retry_of: Option<u128>,
    pub endless: Option<u128>,
}

impl JobInfo {
    pub fn of(spec: &JobSpec) -> JobInfo {
        JobInfo {
            label: spec.label.clone(),
            target: spec.target.clone(),
            set_cover: spec.set_cover,
            batch: spec.batch,
            retry_of: spec.retry_of,
            endless: spec.endless,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u128,
    pub info: Arc<JobInfo>,
    pub state: JobState,
    pub requested_seq: u64,
    pub requested_at: u64,
    pub updated_at: u64,
    /// Submissions so far.
    pub attempts: u32,
    pub backend: Option<String>,
    pub prompt_id: Option<String>,
    pub vanilla: bool,
    pub images: Vec<String>,
    /// The last error, if any.
    pub error: Option<String>,
    pub error_node: Option<String>,
    /// Errors of retryable failed attempts, oldest first.
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Unfinished jobs (queued or submitted), in full. A job that ends leaves this map for
    /// one of the finished sets below; the rest of it stays in the ledger (`fold_job`).
    pub jobs: BTreeMap<u128, Job>,
    /// Queued jobs in request order (ULIDs sort by time).
    pub queued: BTreeSet<u128>,
    /// Jobs handed to a backend.
    pub submitted: BTreeSet<u128>,
    /// Finished jobs by how they ended: ids only, so a million finished jobs cost tens of
    /// megabytes, not gigabytes. A finished job never changes again.
    pub succeeded: BTreeSet<u128>,
    pub failed: BTreeSet<u128>,
    pub set_aside: BTreeSet<u128>,
    pub cancelled: BTreeSet<u128>,
    pub paused: bool,
    /// Active endless sessions: id → generation request JSON.
    pub endless: BTreeMap<u128, String>,
    /// Per library entry, its newest preview: what pages show and sort by without holding
    /// finished jobs (one row per entry, not per job).
    pub previews: BTreeMap<Category, BTreeMap<String, Preview>>,
    /// Per library entry, its succeeded jobs as (id, request seq), by id: what history lists
    /// as the images made from each version, and what dates a cover a job made (stale covers).
    /// 24 bytes a job, not the job.
    pub made: BTreeMap<Category, BTreeMap<String, Vec<(u128, u64)>>>,
    /// Runs again: the jobs requested with `retry_of` each job, by that job.
    pub again: BTreeMap<u128, Vec<u128>>,
}

/// An entry's newest generated image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// The newest (by id) succeeded job of the entry.
    pub job: u128,
    /// That job's first image (relative to the static root).
    pub image: String,
    /// When any job of the entry last succeeded (unix ms).
    pub at: u64,
}

impl Job {
    fn requested(id: u128, info: JobInfo, seq: u64, at: u64) -> Job {
        Job {
            id,
            info: Arc::new(info),
            state: JobState::Queued,
            requested_seq: seq,
            requested_at: at,
            updated_at: at,
            attempts: 0,
            backend: None,
            prompt_id: None,
            vanilla: false,
            images: Vec::new(),
            error: None,
            error_node: None,
            failures: Vec::new(),
        }
    }

    /// Folds one event about this job in; returns its state afterwards.
    fn apply(&mut self, at: u64, event: &Event) -> JobState {
        self.updated_at = at;
        match event {
            Event::JobSubmitted {
                backend,
                prompt_id,
                attempt,
                vanilla,
                ..
            } => {
                self.backend = Some(backend.clone());
                self.prompt_id = Some(prompt_id.clone());
                self.attempts = *attempt;
                self.vanilla = *vanilla;
                self.state = JobState::Submitted;
            }
            Event::JobSucceeded { images, .. } => {
                self.images.clone_from(images);
                self.error = None;
                self.state = JobState::Succeeded;
            }
            Event::JobFailed {
                error,
                node,
                retryable,
                ..
            } => {
                self.error = Some(error.clone());
                self.error_node.clone_from(node);
                if *retryable {
                    self.failures.push(error.clone());
                    self.state = JobState::Queued;
                } else {
                    self.state = JobState::Failed;
                }
            }
            Event::JobSetAside { reason, .. } => {
                self.error = Some(reason.clone());
                self.state = JobState::SetAside;
            }
            Event::JobCancelled { .. } => self.state = JobState::Cancelled,
            _ => {}
        }
        self.state
    }
}

/// What the projection keeps of a new job, from either form of its request.
fn requested(event: &Event) -> Option<(u128, JobInfo)> {
    match event {
        Event::JobRequested { job, spec } => Some((*job, JobInfo::of(spec))),
        Event::JobRequestedCompact { job, spec } => Some((
            *job,
            JobInfo {
                label: spec.label.clone(),
                target: spec.target.clone(),
                set_cover: spec.set_cover,
                batch: spec.batch,
                retry_of: spec.retry_of,
                endless: spec.endless,
            },
        )),
        _ => None,
    }
}

/// A job rebuilt from its own events (as the ledger's job index lists them), in order: how
/// finished jobs are read back. `None` if the first event is not its request.
pub fn fold_job(events: &[crate::store::event::Stored]) -> Option<Job> {
    let (first, rest) = events.split_first()?;
    let (id, info) = requested(first.event())?;
    let mut job = Job::requested(id, info, first.seq, first.envelope.at);
    for s in rest {
        // Like the projection, which forgets a job once it has ended.
        if job.state.is_terminal() {
            break;
        }
        if s.event().job() == Some(id) {
            job.apply(s.envelope.at, s.event());
        }
    }
    Some(job)
}

/// The status words of `JobState::status`, in the order the finished sets are kept.
const FINISHED: [JobState; 4] = [
    JobState::Succeeded,
    JobState::Failed,
    JobState::SetAside,
    JobState::Cancelled,
];

impl Jobs {
    /// An unfinished job, in full.
    pub fn get(&self, id: u128) -> Option<&Job> {
        self.jobs.get(&id)
    }

    fn finished_set(&self, state: JobState) -> Option<&BTreeSet<u128>> {
        match state {
            JobState::Succeeded => Some(&self.succeeded),
            JobState::Failed => Some(&self.failed),
            JobState::SetAside => Some(&self.set_aside),
            JobState::Cancelled => Some(&self.cancelled),
            JobState::Queued | JobState::Submitted => None,
        }
    }

    /// Any job's state, finished or not; `None` for an unknown id.
    pub fn state_of(&self, id: u128) -> Option<JobState> {
        if let Some(j) = self.jobs.get(&id) {
            return Some(j.state);
        }
        FINISHED
            .into_iter()
            .find(|s| self.finished_set(*s).is_some_and(|set| set.contains(&id)))
    }

    /// The seq of an unfinished job's request (finished jobs: `made_seq`, or the ledger).
    pub fn requested_seq(&self, id: u128) -> Option<u64> {
        self.jobs.get(&id).map(|j| j.requested_seq)
    }

    /// The succeeded jobs of an entry, (id, request seq), by id.
    pub fn made(&self, c: Category, slug: &str) -> &[(u128, u64)] {
        self.made
            .get(&c)
            .and_then(|m| m.get(slug))
            .map_or(&[], Vec::as_slice)
    }

    /// The request seq of a job that succeeded for `category/slug`.
    pub fn made_seq(&self, c: Category, slug: &str, job: u128) -> Option<u64> {
        let made = self.made(c, slug);
        made.binary_search_by_key(&job, |m| m.0)
            .ok()
            .map(|i| made[i].1)
    }

    /// The jobs requested as runs again of `job`.
    pub fn runs_again(&self, job: u128) -> &[u128] {
        self.again.get(&job).map_or(&[], Vec::as_slice)
    }

    /// An entry's newest preview, if any job made one.
    pub fn preview(&self, c: Category, slug: &str) -> Option<&Preview> {
        self.previews.get(&c)?.get(slug)
    }

    /// How many jobs have finished.
    pub fn finished_count(&self) -> usize {
        self.succeeded.len() + self.failed.len() + self.set_aside.len() + self.cancelled.len()
    }

    /// The ids of the newest `limit` jobs with status word `status` (any, with `None`),
    /// newest first.
    pub fn newest(&self, status: Option<&str>, limit: usize) -> Vec<u128> {
        let want = |s: JobState| status.is_none_or(|w| s.status() == w);
        let mut sources: Vec<Box<dyn Iterator<Item = u128> + '_>> = Vec::new();
        let unfinished: Vec<u128> = self
            .jobs
            .values()
            .rev()
            .filter(|j| want(j.state))
            .map(|j| j.id)
            .collect();
        sources.push(Box::new(unfinished.into_iter()));
        for s in FINISHED.into_iter().filter(|s| want(*s)) {
            if let Some(set) = self.finished_set(s) {
                sources.push(Box::new(set.iter().rev().copied()));
            }
        }
        let mut heads: Vec<std::iter::Peekable<Box<dyn Iterator<Item = u128> + '_>>> =
            sources.into_iter().map(Iterator::peekable).collect();
        let mut out = Vec::with_capacity(limit.min(1024));
        while out.len() < limit {
            let best = heads
                .iter_mut()
                .enumerate()
                .filter_map(|(i, h)| h.peek().map(|id| (*id, i)))
                .max();
            match best {
                Some((id, i)) => {
                    heads[i].next();
                    out.push(id);
                }
                None => break,
            }
        }
        out
    }

    /// Folds one event in (non-job events are ignored). A job that ends moves from the
    /// unfinished map to its finished set.
    pub fn apply(&mut self, seq: u64, at: u64, event: &Event) {
        if let Some((id, info)) = requested(event) {
            if let Some(of) = info.retry_of {
                self.again.entry(of).or_default().push(id);
            }
            self.jobs.insert(id, Job::requested(id, info, seq, at));
            self.queued.insert(id);
            return;
        }
        match event {
            // A job that ends leaves the map at once, without copying what it ends with.
            Event::JobSucceeded { job, images } => {
                let Some(j) = self.jobs.remove(job) else {
                    return;
                };
                if let Some((c, slug)) = &j.info.target {
                    let made = self
                        .made
                        .entry(*c)
                        .or_default()
                        .entry(slug.clone())
                        .or_default();
                    if let Err(i) = made.binary_search_by_key(job, |m| m.0) {
                        made.insert(i, (*job, j.requested_seq));
                    }
                }
                if let (Some((c, slug)), Some(image)) = (&j.info.target, images.first()) {
                    let shelf = self.previews.entry(*c).or_default();
                    match shelf.get_mut(slug.as_str()) {
                        Some(p) => {
                            if *job >= p.job {
                                p.job = *job;
                                p.image.clone_from(image);
                            }
                            p.at = p.at.max(at);
                        }
                        None => {
                            shelf.insert(
                                slug.clone(),
                                Preview {
                                    job: *job,
                                    image: image.clone(),
                                    at,
                                },
                            );
                        }
                    }
                }
                self.finish(*job, JobState::Succeeded);
            }
            Event::JobFailed {
                job,
                retryable: false,
                ..
            }
            | Event::JobSetAside { job, .. }
            | Event::JobCancelled { job } => {
                if self.jobs.remove(job).is_none() {
                    return;
                }
                let state = match event {
                    Event::JobFailed { .. } => JobState::Failed,
                    Event::JobSetAside { .. } => JobState::SetAside,
                    _ => JobState::Cancelled,
                };
                self.finish(*job, state);
            }
            Event::JobSubmitted { job, .. } | Event::JobFailed { job, .. } => {
                let Some(j) = self.jobs.get_mut(job) else {
                    return;
                };
                let state = j.apply(at, event);
                self.queued.remove(job);
                self.submitted.remove(job);
                if state == JobState::Submitted {
                    self.submitted.insert(*job);
                } else {
                    self.queued.insert(*job);
                }
            }
            Event::QueuePaused { paused } => self.paused = *paused,
            Event::EndlessStarted { endless, request } => {
                self.endless.insert(*endless, request.clone());
            }
            Event::EndlessStopped { endless } => {
                self.endless.remove(endless);
            }
            _ => {}
        }
    }

    /// Files a job that ended (already out of the map) under its outcome.
    fn finish(&mut self, job: u128, state: JobState) {
        self.queued.remove(&job);
        self.submitted.remove(&job);
        let set = match state {
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::SetAside => &mut self.set_aside,
            JobState::Cancelled => &mut self.cancelled,
            JobState::Queued | JobState::Submitted => return,
        };
        set.insert(job);
    }

    /// Unfinished jobs of an endless session.
    pub fn endless_open(&self, endless: u128) -> usize {
        self.queued
            .iter()
            .chain(&self.submitted)
            .filter(|id| {
                self.jobs
                    .get(id)
                    .is_some_and(|j| j.info.endless == Some(endless))
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Envelope, Origin, Stored};

    fn requested(job: u128) -> Event {
        Event::JobRequested {
            job,
            spec: JobSpec {
                label: format!("job {job}"),
                target: None,
                set_cover: false,
                recipe: "{}".into(),
                request: "{}".into(),
                batch: None,
                retry_of: None,
                endless: None,
            },
        }
    }

    fn submitted(job: u128) -> Event {
        Event::JobSubmitted {
            job,
            backend: "b".into(),
            prompt_id: format!("p{job}"),
            attempt: 1,
            vanilla: false,
        }
    }

    fn failed(job: u128, retryable: bool) -> Event {
        Event::JobFailed {
            job,
            error: "e".into(),
            node: None,
            retryable,
        }
    }

    /// Folds `events` (seq = position + 1) and returns the projection and every job as it was
    /// right before it finished.
    fn fold(events: &[Event]) -> (Jobs, BTreeMap<u128, Vec<Stored>>) {
        let mut jobs = Jobs::default();
        let mut by_job: BTreeMap<u128, Vec<Stored>> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let s = Stored {
                seq: i as u64 + 1,
                envelope: Envelope {
                    id: i as u128,
                    at: 1000 + i as u64,
                    origin: Origin::Reactor,
                    event: e.clone(),
                },
            };
            jobs.apply(s.seq, s.envelope.at, e);
            if let Some(id) = e.job() {
                by_job.entry(id).or_default().push(s);
            }
        }
        (jobs, by_job)
    }

    #[test]
    fn each_outcome_moves_a_job_to_its_finished_set_and_out_of_memory() {
        let events = [
            requested(1),
            requested(2),
            requested(3),
            requested(4),
            requested(5),
            submitted(1),
            submitted(2),
            submitted(3),
            Event::JobSucceeded {
                job: 1,
                images: vec!["a.png".into()],
            },
            failed(2, false),
            failed(3, true),
            Event::JobSetAside {
                job: 3,
                reason: "again".into(),
            },
            Event::JobCancelled { job: 4 },
            // About jobs that ended or never were: ignored.
            submitted(1),
            submitted(99),
        ];
        let (jobs, by_job) = fold(&events);
        assert_eq!(jobs.jobs.keys().copied().collect::<Vec<_>>(), [5]);
        assert_eq!(jobs.queued.iter().copied().collect::<Vec<_>>(), [5]);
        assert!(jobs.submitted.is_empty());
        let states: Vec<Option<JobState>> = (1..=6).map(|id| jobs.state_of(id)).collect();
        assert_eq!(
            states,
            [
                Some(JobState::Succeeded),
                Some(JobState::Failed),
                Some(JobState::SetAside),
                Some(JobState::Cancelled),
                Some(JobState::Queued),
                None
            ]
        );
        assert_eq!(jobs.finished_count(), 4);
        let one = fold_job(&by_job[&1]).unwrap();
        assert_eq!(one.state, JobState::Succeeded);
        assert_eq!(one.images, ["a.png"]);
        assert_eq!(
            (one.requested_seq, one.requested_at, one.updated_at),
            (1, 1000, 1008)
        );
        let three = fold_job(&by_job[&3]).unwrap();
        assert_eq!(three.state, JobState::SetAside);
        assert_eq!(three.failures, ["e"]);
        assert_eq!(three.error.as_deref(), Some("again"));
        assert!(
            fold_job(&by_job[&1][1..]).is_none(),
            "a fold starts at the request"
        );
    }

    #[test]
    fn each_entry_keeps_its_newest_preview_and_when_it_last_got_one() {
        let with_target = |job: u128, slug: &str| Event::JobRequested {
            job,
            spec: JobSpec {
                label: String::new(),
                target: Some((Category::Characters, slug.into())),
                set_cover: false,
                recipe: "{}".into(),
                request: "{}".into(),
                batch: None,
                retry_of: None,
                endless: None,
            },
        };
        let done = |job: u128, image: &str| Event::JobSucceeded {
            job,
            images: vec![image.into()],
        };
        let (jobs, _) = fold(&[
            with_target(1, "a"),
            with_target(2, "a"),
            with_target(3, "b"),
            requested(4),
            submitted(1),
            submitted(2),
            submitted(3),
            submitted(4),
            // The newer job finishes first; the older one later does not replace it.
            done(2, "a2.png"),
            done(1, "a1.png"),
            done(4, "none.png"),
            failed(3, false),
        ]);
        let a = jobs.preview(Category::Characters, "a").unwrap();
        assert_eq!((a.job, a.image.as_str(), a.at), (2, "a2.png", 1009));
        assert!(jobs.preview(Category::Characters, "b").is_none());
        assert_eq!(
            jobs.previews.len(),
            1,
            "jobs without a target have no entry"
        );
    }

    #[test]
    fn a_retryable_failure_puts_the_job_back_in_the_queue() {
        let (jobs, _) = fold(&[requested(1), submitted(1), failed(1, true)]);
        let j = jobs.get(1).unwrap();
        assert_eq!(j.state, JobState::Queued);
        assert_eq!(j.failures.len(), 1);
        assert!(jobs.queued.contains(&1));
    }

    #[test]
    fn newest_merges_unfinished_and_finished_jobs_newest_first() {
        let mut events: Vec<Event> = (1..=8).map(requested).collect();
        events.extend([
            submitted(2),
            submitted(7),
            Event::JobSucceeded {
                job: 2,
                images: vec![],
            },
            submitted(5),
            failed(5, false),
            submitted(6),
            Event::JobSetAside {
                job: 6,
                reason: "r".into(),
            },
            Event::JobCancelled { job: 8 },
            submitted(4),
            Event::JobSucceeded {
                job: 4,
                images: vec![],
            },
        ]);
        let (jobs, _) = fold(&events);
        let table: [(Option<&str>, usize, &[u128]); 8] = [
            (None, 100, &[8, 7, 6, 5, 4, 3, 2, 1]),
            (None, 3, &[8, 7, 6]),
            (Some("done"), 100, &[4, 2]),
            (Some("failed"), 100, &[6, 5]),
            (Some("cancelled"), 100, &[8]),
            (Some("pending"), 100, &[3, 1]),
            (Some("running"), 1, &[7]),
            (Some("nonsense"), 100, &[]),
        ];
        for (status, limit, want) in table {
            assert_eq!(jobs.newest(status, limit), want, "{status:?} {limit}");
        }
    }

    #[test]
    fn succeeded_jobs_are_listed_per_entry_with_their_request_seq_and_runs_again_per_job() {
        let targeted = |job: u128, slug: &str, retry_of: Option<u128>| Event::JobRequested {
            job,
            spec: JobSpec {
                label: slug.into(),
                target: Some((Category::Characters, slug.into())),
                set_cover: false,
                recipe: "{}".into(),
                request: "{}".into(),
                batch: None,
                retry_of,
                endless: None,
            },
        };
        let ok = |job: u128| Event::JobSucceeded {
            job,
            images: vec![format!("uploads/characters/x/{job}_0.png")],
        };
        let events = [
            targeted(7, "tifa", None),    // seq 1
            targeted(5, "tifa", None),    // seq 2
            targeted(9, "link", Some(7)), // seq 3
            targeted(8, "tifa", Some(7)), // seq 4
            requested(6),                 // seq 5: no target
            submitted(7),
            submitted(5),
            submitted(9),
            submitted(8),
            submitted(6),
            ok(7),
            ok(5),
            ok(9),
            failed(8, false),
            ok(6),
        ];
        let (jobs, _) = fold(&events);
        let c = Category::Characters;
        // By id, whatever order they finished in; failures and untargeted jobs are not listed.
        assert_eq!(jobs.made(c, "tifa"), &[(5, 2), (7, 1)]);
        assert_eq!(jobs.made(c, "link"), &[(9, 3)]);
        assert!(jobs.made(c, "nobody").is_empty());
        assert_eq!(jobs.made_seq(c, "tifa", 7), Some(1));
        assert_eq!(jobs.made_seq(c, "tifa", 9), None, "another entry's job");
        assert_eq!(jobs.runs_again(7), &[9, 8]);
        assert!(jobs.runs_again(5).is_empty());
        assert_eq!(jobs.requested_seq(7), None, "finished: from the ledger");
        assert!(jobs.jobs.is_empty());
    }
}
