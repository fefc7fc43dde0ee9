//! `kv`: byte values in named buckets, kept in the gateway's store; only granted buckets open.

use base64::Engine as _;
use serde_json::json;

use super::super::bindings::kv::Host;
use super::super::bindings::types::Error;
use super::super::component::Owner;
use super::super::ctx::NodeCtx;
use super::super::durable::HostFn;
use super::{ErrorCode, denied, error};
use crate::store::{Batch, Store};

/// Largest value stored.
const MAX_VALUE: usize = 1 << 20;

/// Where a plugin's bucket lives: `kv/<bucket>/` for the operator's and built-in plugins and for buckets
/// the operator shares, `kv/@<bundle id>/<bucket>/` for a bundle's own (so one bundle never reads another's,
/// nor the built-in span memory). Bucket names hold no `/` (grants are checked), so prefixes never overlap.
fn bucket_prefix(ctx: &NodeCtx, bucket: &str) -> String {
    match &ctx.owner {
        Owner::Bundle { id, .. } if !ctx.caps.shared_kv.iter().any(|b| b == bucket) => {
            format!("kv/@{id}/{bucket}/")
        }
        _ => format!("kv/{bucket}/"),
    }
}

fn checked(ctx: &NodeCtx, bucket: &str, k: &str) -> Result<String, Error> {
    if !ctx.grants.allows_bucket(bucket) {
        return Err(denied(format!("kv bucket {bucket:?}")));
    }
    if k.is_empty() || k.len() > 512 || k.contains('\0') {
        return Err(error(
            ErrorCode::InvalidInput,
            "kv keys must be 1..512 bytes without NUL",
        ));
    }
    Ok(format!("{}{k}", bucket_prefix(ctx, bucket)))
}

fn no_store() -> Error {
    error(ErrorCode::Unavailable, "kv is not available outside a run")
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn unb64(s: Option<String>) -> Result<Option<Vec<u8>>, Error> {
    s.map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| {
                error(
                    ErrorCode::Internal,
                    format!("recorded value is not base64: {e}"),
                )
            })
    })
    .transpose()
}

async fn write(store: Store, shard: u32, k: String, v: Option<Vec<u8>>) -> Result<(), Error> {
    let mut batch = Batch::new();
    batch.set_shard(shard);
    match v {
        Some(v) => batch.put_meta(&k, &v),
        None => batch.delete_meta(&k),
    }
    store
        .commit_async(batch)
        .await
        .map_err(|e| error(ErrorCode::Unavailable, format!("kv write failed: {e}")))
}

impl Host for NodeCtx {
    async fn get(
        &mut self,
        bucket: String,
        k: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let full = checked(self, &bucket, &k);
        let store = self.rec.store().cloned();
        let got: Result<Option<String>, Error> = self
            .rec
            .call(
                HostFn::local("kv", "get"),
                json!({"bucket": bucket, "key": k}),
                async move {
                    let full = full?;
                    let store = store.ok_or_else(no_store)?;
                    store
                        .get_meta(&full)
                        .map(|v| v.map(|v| b64(&v)))
                        .map_err(|e| error(ErrorCode::Unavailable, format!("kv read failed: {e}")))
                },
            )
            .await?;
        Ok(got.and_then(unb64))
    }

    async fn set(
        &mut self,
        bucket: String,
        k: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let full = checked(self, &bucket, &k);
        let (store, shard) = (self.rec.store().cloned(), self.rec.shard());
        let req = json!({"bucket": bucket, "key": k, "value_sha256": crate::plugins::cache::sha256_hex(&value),
            "value_len": value.len()});
        self.rec
            .call(HostFn::remote("kv", "set"), req, async move {
                let full = full?;
                if value.len() > MAX_VALUE {
                    return Err(error(
                        ErrorCode::TooLarge,
                        format!("kv values are at most {MAX_VALUE} bytes"),
                    ));
                }
                write(store.ok_or_else(no_store)?, shard, full, Some(value)).await
            })
            .await
    }

    async fn delete(&mut self, bucket: String, k: String) -> wasmtime::Result<Result<(), Error>> {
        let full = checked(self, &bucket, &k);
        let (store, shard) = (self.rec.store().cloned(), self.rec.shard());
        self.rec
            .call(
                HostFn::remote("kv", "delete"),
                json!({"bucket": bucket, "key": k}),
                async move { write(store.ok_or_else(no_store)?, shard, full?, None).await },
            )
            .await
    }

    async fn list_keys(
        &mut self,
        bucket: String,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let allowed = self.grants.allows_bucket(&bucket);
        let store = self.rec.store().cloned();
        let base = bucket_prefix(self, &bucket);
        self.rec
            .call(
                HostFn::local("kv", "list-keys"),
                json!({"bucket": bucket, "prefix": prefix}),
                async move {
                    if !allowed {
                        return Err(denied(format!("kv bucket {bucket:?}")));
                    }
                    store
                        .ok_or_else(no_store)?
                        .meta_keys(&format!("{base}{prefix}"), 10_000)
                        .map(|ks| {
                            ks.into_iter()
                                .filter_map(|k| k.strip_prefix(&base).map(String::from))
                                .collect()
                        })
                        .map_err(|e| error(ErrorCode::Unavailable, format!("kv read failed: {e}")))
                },
            )
            .await
    }
}
