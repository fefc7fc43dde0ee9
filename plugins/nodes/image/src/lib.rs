//! Image nodes (shipped built-in): `generate_image` (text to image), `edit_image` and its alias
//! `image_to_image` (an edit of an image artifact). Pins and outputs follow the VisualFlow editor's templates
//! and the seed's output mapping; images travel as run artifacts referenced by `{"$artifact": id}`. Each node
//! makes one `image` host call, recorded and replayed like every host call: a replay never asks the provider
//! again.

use abstractgateway_plugin_sdk::image::{self, EditRequest, Generation, Picture};
use abstractgateway_plugin_sdk::{
    Error, Invocation, Node, NodeResult, NodeType, Outputs, Value, export_node, json,
};

// The media nodes read their parameters and artifact references as the voice nodes do: one source for both.
#[path = "../../voice/src/params.rs"]
pub mod params;
#[path = "../../voice/src/refs.rs"]
pub mod refs;

use params::Params;
use refs::{artifact_ref, required_artifact_id};

/// The plugin.
pub struct Images;

/// The seed runs image generation as an `llm_call` effect with an output spec.
const LLM_EFFECT: &str = "llm_call";

fn common(t: NodeType) -> NodeType {
    t.effect(LLM_EFFECT)
        .input("prompt", "string")
        .input("image_provider", "provider_image")
        .input("image_model", "model")
        .input("width", "number")
        .input("height", "number")
        .input("format", "string")
        .output("image_artifact", "artifact_image")
        .output("artifact_ref", "artifact")
        .output("artifact_id", "string")
        .output("content_type", "string")
        .output("outputs", "object")
        .output("meta", "object")
        .output("success", "boolean")
}

fn edit_type(name: &str, label: &str) -> NodeType {
    common(NodeType::new(name).label(label).description(
        "Edits an image artifact as the prompt says; the result becomes a new artifact.",
    ))
    .input("image_artifact", "artifact_image")
    .input("source_image", "artifact_image")
    .input("mask_artifact", "artifact_image")
    .input("strength", "number")
}

impl Node for Images {
    fn describe() -> Vec<NodeType> {
        vec![
            common(
                NodeType::new("generate_image")
                    .label("Generate Image")
                    .description("Makes an image from a prompt; it becomes an artifact of the run (PNG by default)."),
            )
            .input("seed", "number")
            .input("steps", "number")
            .input("guidance_scale", "number")
            .input("negative_prompt", "string"),
            edit_type("edit_image", "Edit Image"),
            edit_type("image_to_image", "Image to Image"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        let p = Params::of(&inv);
        let out = match inv.node_type() {
            "generate_image" => generate(&p),
            "edit_image" | "image_to_image" => edit(&p),
            other => Err(Error::invalid_input(format!(
                "node-image has no node type {other:?}"
            ))),
        };
        Ok(out?.into())
    }
}

export_node!(Images);

/// What one node asks, plus the options the host's image interface has no field for.
struct Asked {
    effect: &'static str,
    format: String,
    ignored: Vec<&'static str>,
}

fn prompt(p: &Params) -> Result<String, Error> {
    p.text(&["prompt", "text"])?.ok_or_else(|| {
        Error::invalid_input("prompt is empty: wire the prompt pin or give it a default")
    })
}

/// A whole number of pixels in 1..=65535, or `None`.
fn side(p: &Params, keys: &[&str]) -> Result<Option<u32>, Error> {
    match p.number(keys)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (1.0..=65_535.0).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Error::invalid_input(format!(
            "{} must be a whole number of pixels (1..65535), got {n}",
            keys[0]
        ))),
    }
}

fn format(p: &Params) -> Result<String, Error> {
    Ok(p.text(&["format", "response_format"])?
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_else(|| "png".into()))
}

fn provider(p: &Params) -> Result<Option<String>, Error> {
    p.text(&["image_provider", "imageProvider", "provider_image"])
}

fn model(p: &Params) -> Result<Option<String>, Error> {
    p.text(&["image_model", "imageModel", "model_image"])
}

fn generate(p: &Params) -> Result<Outputs, Error> {
    let fmt = format(p)?;
    let seed = match p.number(&["seed"])? {
        Some(s) if s.fract() == 0.0 && s.abs() < 9.0e15 => Some(s as i64),
        Some(s) => {
            return Err(Error::invalid_input(format!(
                "seed must be a whole number, got {s}"
            )));
        }
        None => None,
    };
    let steps = match p.number(&["steps"])? {
        Some(s) if s.fract() == 0.0 && (1.0..=10_000.0).contains(&s) => Some(s as u32),
        Some(s) => {
            return Err(Error::invalid_input(format!(
                "steps must be 1..10000, got {s}"
            )));
        }
        None => None,
    };
    let req = Generation {
        prompt: prompt(p)?,
        negative_prompt: p.text(&["negative_prompt"])?,
        width: side(p, &["width"])?,
        height: side(p, &["height"])?,
        format: Some(fmt.clone()),
        seed,
        steps,
        guidance_scale: p.number(&["guidance_scale", "guidanceScale"])?,
        provider: provider(p)?,
        model: model(p)?,
    };
    let picture = image::generate(&req)?;
    Ok(outputs(
        &Asked {
            effect: "generate_image",
            format: fmt,
            ignored: vec![],
        },
        &picture,
    ))
}

fn edit(p: &Params) -> Result<Outputs, Error> {
    let fmt = format(p)?;
    let source = p.value(&[
        "image_artifact",
        "source_image",
        "sourceImage",
        "input_image",
        "image",
        "artifact",
    ]);
    let source = required_artifact_id("image_artifact", source)?;
    let mask = match p.value(&["mask_artifact", "mask_image", "maskImage", "mask"]) {
        Some(v) => Some(required_artifact_id("mask_artifact", Some(v))?),
        None => None,
    };
    let mut ignored = vec![];
    if p.number(&["strength"])?.is_some() {
        ignored.push("strength");
    }
    let req = EditRequest {
        prompt: prompt(p)?,
        source_artifact_id: source,
        mask_artifact_id: mask,
        width: side(p, &["width"])?,
        height: side(p, &["height"])?,
        format: Some(fmt.clone()),
        provider: provider(p)?,
        model: model(p)?,
    };
    let picture = image::edit(&req)?;
    Ok(outputs(
        &Asked {
            effect: "edit_image",
            format: fmt,
            ignored,
        },
        &picture,
    ))
}

/// The output pins for a made `picture`, as the seed maps a generated image.
fn outputs(asked: &Asked, picture: &Picture) -> Outputs {
    let r = artifact_ref(&picture.artifact_id, &picture.content_type, picture.size);
    let mut meta = json!({"schema": format!("abstractflow.{}.v1.meta", asked.effect), "version": 1,
        "modality": "image", "format": asked.format, "provider": picture.provider, "model": picture.model});
    if !asked.ignored.is_empty()
        && let Some(m) = meta.as_object_mut()
    {
        m.insert("ignored_options".into(), json!(asked.ignored));
    }
    let mut out = Outputs::new();
    out.insert("image_artifact".into(), r.clone());
    out.insert("artifact_ref".into(), r.clone());
    out.insert("artifact_id".into(), json!(picture.artifact_id));
    out.insert("content_type".into(), json!(picture.content_type));
    out.insert("outputs".into(), json!({"image": [r]}));
    out.insert("meta".into(), meta);
    out.insert("success".into(), Value::Bool(true));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_three_types_with_the_seed_effect() {
        let types = Images::describe();
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["generate_image", "edit_image", "image_to_image"]);
        for t in &types {
            assert_eq!(t.effect.as_deref(), Some("llm_call"));
            assert!(t.outputs.iter().any(|p| p.id == "image_artifact"));
        }
    }

    #[test]
    fn bad_parameters_are_refused_before_any_host_call() {
        let inv = |inputs: Value| Invocation::new("generate_image", "n", json!({}), inputs);
        for (inputs, says) in [
            (json!({"prompt": " "}), "prompt is empty"),
            (
                json!({"prompt": "cat", "width": 10.5}),
                "whole number of pixels",
            ),
            (
                json!({"prompt": "cat", "width": -3}),
                "whole number of pixels",
            ),
            (json!({"prompt": "cat", "seed": 1.5}), "seed"),
            (json!({"prompt": "cat", "steps": 0}), "steps"),
            (json!({"prompt": ["cat"]}), "must be a string"),
        ] {
            let i = inv(inputs.clone());
            let e = generate(&Params::of(&i)).expect_err("refused");
            assert!(e.message.contains(says), "{inputs}: {e}");
        }
        let i = Invocation::new(
            "edit_image",
            "n",
            json!({}),
            json!({"prompt": "x", "image_artifact": [1]}),
        );
        let e = edit(&Params::of(&i)).expect_err("no source");
        assert!(e.message.contains("image_artifact"), "{e}");
    }

    #[test]
    fn outputs_follow_the_seeds_mapping() {
        let pic = Picture {
            artifact_id: "a".repeat(32),
            content_type: "image/png".into(),
            size: 67,
            provider: "openai-compatible".into(),
            model: "sd".into(),
        };
        let out = outputs(
            &Asked {
                effect: "generate_image",
                format: "png".into(),
                ignored: vec![],
            },
            &pic,
        );
        assert_eq!(out["image_artifact"]["$artifact"], json!("a".repeat(32)));
        assert_eq!(out["meta"]["schema"], "abstractflow.generate_image.v1.meta");
        assert_eq!(out["success"], true);
    }
}
