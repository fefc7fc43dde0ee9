//! Voice nodes (shipped built-in): `generate_voice` (text to speech), `transcribe_audio` (speech to
//! text) and `listen_voice` (waits for the user's spoken answer, then transcribes it). Pins and outputs
//! follow the VisualFlow editor's templates; audio travels as run artifacts referenced by
//! `{"$artifact": id}`.

use abstractgateway_plugin_sdk::{Error, Invocation, Node, NodeResult, NodeType, export_node};

pub mod listen;
pub mod params;
pub mod refs;
pub mod stt;
pub mod tts;

use params::Params;

/// The plugin.
pub struct Voice;

/// The seed runs speech generation and transcription as an `llm_call` effect with an output spec.
const LLM_EFFECT: &str = "llm_call";

impl Node for Voice {
    fn describe() -> Vec<NodeType> {
        vec![
            NodeType::new("generate_voice")
                .label("Generate Voice")
                .description("Speaks a text; the audio (WAV by default) becomes an artifact of the run.")
                .effect(LLM_EFFECT)
                .input("text", "string")
                .input("tts_provider", "provider_voice")
                .input("tts_model", "model")
                .input("voice", "string")
                .input("profile", "string")
                .input("quality_preset", "string")
                .input("format", "string")
                .input("speed", "number")
                .input("instructions", "string")
                .output("audio_artifact", "artifact_audio")
                .output("artifact_ref", "artifact")
                .output("artifact_id", "string")
                .output("content_type", "string")
                .output("outputs", "object")
                .output("meta", "object")
                .output("success", "boolean"),
            NodeType::new("transcribe_audio")
                .label("Transcribe Audio")
                .description(
                    "Turns the speech in an audio artifact into text; `prompt` lists the words expected.",
                )
                .effect(LLM_EFFECT)
                .input("audio_artifact", "artifact_audio")
                .input("stt_provider", "provider_voice")
                .input("language", "string")
                .input("stt_model", "model")
                .input("prompt", "string")
                .input("format", "string")
                .input("temperature", "number")
                .output("text", "string")
                .output("transcript_artifact", "artifact_text")
                .output("artifact_ref", "artifact")
                .output("artifact_id", "string")
                .output("meta", "object")
                .output("success", "boolean"),
            NodeType::new("listen_voice")
                .label("Listen (voice)")
                .description(
                    "Waits for the user to answer by voice (wait key `voice_input`), then transcribes the audio.",
                )
                .effect("wait_event")
                .input("prompt", "string")
                .input("language", "string")
                .input("stt_provider", "provider_voice")
                .input("stt_model", "model")
                .input("max_duration_s", "number")
                .input("hint", "string")
                .output("audio_artifact", "artifact_audio")
                .output("artifact_ref", "artifact")
                .output("artifact_id", "string")
                .output("content_type", "string")
                .output("text", "string")
                .output("meta", "object")
                .output("success", "boolean"),
        ]
    }

    fn run(inv: Invocation) -> Result<NodeResult, Error> {
        let p = Params::of(&inv);
        let out = match inv.node_type() {
            "generate_voice" => tts::run(&p),
            "transcribe_audio" => stt::run(&p),
            "listen_voice" => listen::run(&p),
            other => Err(Error::invalid_input(format!(
                "node-voice has no node type {other:?}"
            ))),
        };
        Ok(out?.into())
    }
}

export_node!(Voice);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_three_types_with_the_seed_effects() {
        let types = Voice::describe();
        let got: Vec<(&str, Option<&str>)> = types
            .iter()
            .map(|t| (t.name.as_str(), t.effect.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("generate_voice", Some("llm_call")),
                ("transcribe_audio", Some("llm_call")),
                ("listen_voice", Some("wait_event")),
            ]
        );
        let stt = &types[1];
        assert!(stt.outputs.iter().any(|p| p.id == "transcript_artifact"));
        for t in &types {
            assert_eq!(
                t.input_failure(),
                abstractgateway_plugin_sdk::InputFailure::FailRun
            );
            assert_eq!(
                t.on_failure,
                abstractgateway_plugin_sdk::NodeFailure::FailRun
            );
            assert_eq!(t.reads, abstractgateway_plugin_sdk::Reads::default());
        }
    }
}
