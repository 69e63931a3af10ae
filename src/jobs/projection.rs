//! The jobs projection: a pure fold of job events into each job's state, the queue in request
//! order, the pause switch and the endless sessions. The reactor reads it to decide what to do;
//! the API reads it for status.

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
    pub jobs: BTreeMap<u128, Job>,
    /// Queued jobs in request order (ULIDs sort by time).
    pub queued: BTreeSet<u128>,
    /// Jobs handed to a backend.
    pub submitted: BTreeSet<u128>,
    pub paused: bool,
    /// Active endless sessions: id → generation request JSON.
    pub endless: BTreeMap<u128, String>,
}

impl Jobs {
    pub fn get(&self, id: u128) -> Option<&Job> {
        self.jobs.get(&id)
    }

    fn set_state(&mut self, id: u128, state: JobState) {
        self.queued.remove(&id);
        self.submitted.remove(&id);
        match state {
            JobState::Queued => {
                self.queued.insert(id);
            }
            JobState::Submitted => {
                self.submitted.insert(id);
            }
            _ => {}
        }
        if let Some(j) = self.jobs.get_mut(&id) {
            j.state = state;
        }
    }

    /// Folds one event in (non-job events are ignored).
    pub fn apply(&mut self, seq: u64, at: u64, event: &Event) {
        if let Some(j) = event.job().and_then(|id| self.jobs.get_mut(&id)) {
            j.updated_at = at;
        }
        match event {
            Event::JobRequested { job, spec } => {
                self.jobs.insert(
                    *job,
                    Job {
                        id: *job,
                        info: Arc::new(JobInfo::of(spec)),
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
                    },
                );
                self.queued.insert(*job);
            }
            Event::JobSubmitted {
                job,
                backend,
                prompt_id,
                attempt,
                vanilla,
            } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.backend = Some(backend.clone());
                    j.prompt_id = Some(prompt_id.clone());
                    j.attempts = *attempt;
                    j.vanilla = *vanilla;
                }
                self.set_state(*job, JobState::Submitted);
            }
            Event::JobSucceeded { job, images } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.images.clone_from(images);
                    j.error = None;
                }
                self.set_state(*job, JobState::Succeeded);
            }
            Event::JobFailed {
                job,
                error,
                node,
                retryable,
            } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.error = Some(error.clone());
                    j.error_node.clone_from(node);
                    if *retryable {
                        j.failures.push(error.clone());
                    }
                }
                let next = if *retryable {
                    JobState::Queued
                } else {
                    JobState::Failed
                };
                self.set_state(*job, next);
            }
            Event::JobSetAside { job, reason } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.error = Some(reason.clone());
                }
                self.set_state(*job, JobState::SetAside);
            }
            Event::JobCancelled { job } => self.set_state(*job, JobState::Cancelled),
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
