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
