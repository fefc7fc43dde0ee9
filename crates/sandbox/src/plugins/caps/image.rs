//! `image`: text-to-image and image edits through the host's image providers (the OpenAI-compatible images
//! API on an LLM provider's endpoint); images are stored as artifacts of the run, never returned inline.

use std::sync::Arc;

use super::super::bindings::image::{EditRequest, Generation, Host, Picture};
use super::super::bindings::types::Error;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::artifacts::blocking;
use super::llm::{Answer, wit_error};
use super::{ErrorCode, denied, error};
use crate::artifacts::{ArtifactStore, NewArtifact};
use abstractgateway_providers::image::{Image, ImageRequest, Images, Task};

/// The image providers of the host.
pub trait ImageBackend: Send + Sync {
    /// Text to image, stored as an artifact of `run_id`.
    fn generate(&self, run_id: &str, req: Generation) -> Answer<Picture>;
    /// An edit of an image artifact of `run_id`, stored as a new one.
    fn edit(&self, run_id: &str, req: EditRequest) -> Answer<Picture>;
}

impl Host for NodeCtx {
    async fn generate(&mut self, req: Generation) -> wasmtime::Result<Result<Picture, Error>> {
        self.image_call("generate", req, |b, run, req| b.generate(run, req))
            .await
    }

    async fn edit(&mut self, req: EditRequest) -> wasmtime::Result<Result<Picture, Error>> {
        self.image_call("edit", req, |b, run, req| b.edit(run, req))
            .await
    }
}

impl NodeCtx {
    /// One recorded `image` call: refused without the grant or a provider, else `call` on the backend.
    async fn image_call<R: serde::Serialize + Send + 'static>(
        &mut self,
        name: &'static str,
        req: R,
        call: impl FnOnce(&dyn ImageBackend, &str, R) -> Answer<Picture> + Send + 'static,
    ) -> wasmtime::Result<Result<Picture, Error>> {
        let request = serde_json::to_value(&req)?;
        let (allowed, backend, run) = (
            self.grants.image,
            self.caps.image.clone(),
            self.rec.run_id().to_string(),
        );
        self.rec
            .call(HostFn::remote("image", name), request, async move {
                if !allowed {
                    return Err(denied("image"));
                }
                let backend = backend.ok_or_else(unconfigured)?;
                call(backend.as_ref(), &run, req).await
            })
            .await
    }
}

fn unconfigured() -> Error {
    error(
        ErrorCode::Unavailable,
        "no image provider is configured on this gateway",
    )
}

/// The host's image providers, reading and writing images as artifacts of the run.
pub struct ProvidersBackend {
    pub images: Arc<Images>,
    pub artifacts: Arc<ArtifactStore>,
}

impl ProvidersBackend {
    /// Reads image artifact `id` of `run`, refusing one over the providers' cap before loading it.
    async fn read(&self, run: &str, id: String) -> Result<Vec<u8>, Error> {
        let (store, run, max) = (
            self.artifacts.clone(),
            run.to_string(),
            self.images.config().max_bytes,
        );
        blocking(move || {
            let meta = store.get_meta(&run, &id)?;
            if meta.size_bytes > max {
                return Err(crate::artifacts::ArtifactError::TooLarge {
                    size: meta.size_bytes,
                    max,
                });
            }
            store.read(&run, &id).map(|(_, bytes)| bytes)
        })
        .await
    }

    /// Stores `image` as an artifact of `run`.
    async fn keep(&self, run: &str, task: &'static str, image: Image) -> Result<Picture, Error> {
        let (store, run) = (self.artifacts.clone(), run.to_string());
        let (provider, model) = (image.provider.clone(), image.model.clone());
        let meta = blocking(move || {
            let mut extra = NewArtifact::default();
            extra.tags.insert("kind".into(), "image".into());
            extra.tags.insert("source".into(), format!("image.{task}"));
            extra.tags.insert("provider".into(), image.provider.clone());
            store.put(&run, &image.bytes, image.content_type, extra)
        })
        .await?;
        Ok(Picture {
            artifact_id: meta.artifact_id,
            content_type: meta.content_type,
            size: meta.size_bytes,
            provider,
            model,
        })
    }
}

impl ImageBackend for Arc<ProvidersBackend> {
    fn generate(&self, run_id: &str, req: Generation) -> Answer<Picture> {
        let (me, run) = (self.clone(), run_id.to_string());
        Box::pin(async move {
            let image = me
                .images
                .make(ImageRequest {
                    task: Task::Generate,
                    prompt: req.prompt,
                    negative_prompt: req.negative_prompt,
                    width: req.width,
                    height: req.height,
                    format: req.format,
                    seed: req.seed,
                    steps: req.steps,
                    guidance_scale: req.guidance_scale,
                    provider: req.provider,
                    model: req.model,
                })
                .await
                .map_err(wit_error)?;
            me.keep(&run, "generate", image).await
        })
    }

    fn edit(&self, run_id: &str, req: EditRequest) -> Answer<Picture> {
        let (me, run) = (self.clone(), run_id.to_string());
        Box::pin(async move {
            let source = me.read(&run, req.source_artifact_id).await?;
            let mask = match req.mask_artifact_id {
                Some(id) => Some(me.read(&run, id).await?),
                None => None,
            };
            let image = me
                .images
                .make(ImageRequest {
                    task: Task::Edit { source, mask },
                    prompt: req.prompt,
                    negative_prompt: None,
                    width: req.width,
                    height: req.height,
                    format: req.format,
                    seed: None,
                    steps: None,
                    guidance_scale: None,
                    provider: req.provider,
                    model: req.model,
                })
                .await
                .map_err(wit_error)?;
            me.keep(&run, "edit", image).await
        })
    }
}
