//! The prompt-and-workflow engine: pure functions from library documents and generation options to
//! prompts, their explanation, a validated ComfyUI workflow and a wiring report (design invariant 4:
//! no IO, no clock, no randomness — seeds and random picks are inputs).
//!
//! Modules: `doc` reads stored documents tolerantly, `tags` owns tag splitting and dedup, `prompt`
//! composes the prompts, `workflow` fills the template, `validate` checks a graph against the node
//! schemas. This file is the façade the rest of the crate calls.

pub mod doc;
pub mod prompt;
pub mod tags;
pub mod validate;
pub mod workflow;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use doc::{Category, RANDOM_SENTINEL, pick_random};
pub use prompt::{
    BuiltPrompts, Composition, Doc, Explanation, FieldSelection, PromptKind, Prompts, RemovalKind,
    RemovedTag, TagSource, build_prompts, ensure_character_fields, parse_orientation,
};
pub use validate::{ErrorKind, KnownModels, ValidationError, comfy_error_body, validate};
pub use workflow::{ActiveLora, GenerationOptions, LoraSlot, WorkflowReport, template};

#[derive(Clone, Debug, PartialEq)]
pub enum EngineError {
    /// The embedded template did not parse (a build defect, not user input).
    Template(String),
    /// The built workflow failed validation; each error names node, class and input.
    Invalid(Vec<ValidationError>),
    /// A strengths sweep was asked for an impossible range or an empty slot.
    Sweep(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Template(e) => write!(f, "workflow template does not parse: {e}"),
            EngineError::Invalid(errors) => {
                write!(f, "workflow failed validation")?;
                for (i, e) in errors.iter().enumerate() {
                    write!(f, "{} {e}", if i == 0 { ":" } else { ";" })?;
                }
                Ok(())
            }
            EngineError::Sweep(e) => write!(f, "strengths sweep: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Everything one generation needs and explains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub prompts: Prompts,
    pub explanation: Explanation,
    pub workflow: Value,
    pub report: WorkflowReport,
}

impl Generation {
    /// Prompt warnings, then workflow warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.explanation
            .warnings
            .iter()
            .chain(&self.report.warnings)
            .map(String::as_str)
    }
}

/// Builds prompts and workflow for one generation and validates the workflow.
pub fn generate(
    comp: &Composition<'_>,
    opts: &GenerationOptions<'_>,
) -> Result<Generation, EngineError> {
    let template = match opts.template {
        Some(t) => t,
        None => workflow::template()?,
    };
    let BuiltPrompts {
        prompts,
        explanation,
    } = build_prompts(comp, workflow::template_negative(template));
    let (workflow, report) = workflow::build_workflow(template, comp, &prompts, opts);
    validate(&workflow, &opts.known).map_err(EngineError::Invalid)?;
    Ok(Generation {
        prompts,
        explanation,
        workflow,
        report,
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepStep {
    pub weight: f64,
    pub workflow: Value,
}

/// A strengths gallery: the base generation and one workflow per weight of the swept slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrengthsSweep {
    pub base: Generation,
    pub slot: LoraSlot,
    pub steps: Vec<SweepStep>,
}

/// One axis of a strengths grid: a LoRA slot and the weights it takes (`min..=max` by `step`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepAxis {
    pub slot: LoraSlot,
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

/// One cell of a strengths grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridStep {
    pub x: f64,
    pub y: Option<f64>,
    pub workflow: Value,
}

/// A strengths grid: the base generation and one workflow per cell, row by row (`y` outer,
/// `x` inner), in ascending weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrengthsGrid {
    pub base: Generation,
    pub steps: Vec<GridStep>,
}

/// Two LoRA slots' weights at once (or one, with `y` absent): every (x, y) pair, with prompts,
/// seed and every other setting fixed. Both slots must hold a LoRA in the base generation, be
/// different, and make at most `workflow::MAX_SWEEP_STEPS` cells together.
pub fn strengths_grid(
    comp: &Composition<'_>,
    opts: &GenerationOptions<'_>,
    x: &SweepAxis,
    y: Option<&SweepAxis>,
) -> Result<StrengthsGrid, EngineError> {
    let xs = workflow::sweep_weights(x.min, x.max, x.step)?;
    let ys: Vec<Option<f64>> = match y {
        Some(a) => {
            if a.slot == x.slot {
                return Err(EngineError::Sweep(format!(
                    "both axes sweep slot {} ({:?}); pick another slot for the second",
                    x.slot.node_id(),
                    x.slot
                )));
            }
            workflow::sweep_weights(a.min, a.max, a.step)?
                .into_iter()
                .map(Some)
                .collect()
        }
        None => vec![None],
    };
    if xs.len() * ys.len() > workflow::MAX_SWEEP_STEPS {
        return Err(EngineError::Sweep(format!(
            "{} × {} makes {} workflows; the limit is {}",
            xs.len(),
            ys.len(),
            xs.len() * ys.len(),
            workflow::MAX_SWEEP_STEPS
        )));
    }
    let base = generate(comp, opts)?;
    for slot in std::iter::once(x.slot).chain(y.map(|a| a.slot)) {
        if !base.report.loras.iter().any(|l| l.slot == slot) {
            return Err(EngineError::Sweep(format!(
                "slot {} ({slot:?}) holds no LoRA in this composition",
                slot.node_id()
            )));
        }
    }
    let mut steps = Vec::with_capacity(xs.len() * ys.len());
    for wy in &ys {
        for wx in &xs {
            let mut wf = base.workflow.clone();
            workflow::set_lora_weight(&mut wf, x.slot, *wx);
            if let (Some(a), Some(w)) = (y, wy) {
                workflow::set_lora_weight(&mut wf, a.slot, *w);
            }
            validate(&wf, &opts.known).map_err(EngineError::Invalid)?;
            steps.push(GridStep {
                x: *wx,
                y: *wy,
                workflow: wf,
            });
        }
    }
    Ok(StrengthsGrid { base, steps })
}

/// One LoRA slot's weight over `min..=max` by `step` (see `workflow::sweep_weights`), with prompts,
/// seed and every other setting fixed. The slot must hold a LoRA in the base generation.
pub fn strengths_sweep(
    comp: &Composition<'_>,
    opts: &GenerationOptions<'_>,
    slot: LoraSlot,
    min: f64,
    max: f64,
    step: f64,
) -> Result<StrengthsSweep, EngineError> {
    let weights = workflow::sweep_weights(min, max, step)?;
    let base = generate(comp, opts)?;
    if !base.report.loras.iter().any(|l| l.slot == slot) {
        return Err(EngineError::Sweep(format!(
            "slot {} ({slot:?}) holds no LoRA in this composition",
            slot.node_id()
        )));
    }
    let steps = weights
        .into_iter()
        .map(|weight| {
            let mut wf = base.workflow.clone();
            workflow::set_lora_weight(&mut wf, slot, weight);
            validate(&wf, &opts.known).map_err(EngineError::Invalid)?;
            Ok(SweepStep {
                weight,
                workflow: wf,
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(StrengthsSweep { base, slot, steps })
}
