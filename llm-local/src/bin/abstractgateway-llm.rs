//! `abstractgateway-llm`: serve the local model over the OpenAI protocol, or answer one prompt.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use abstractgateway_llm_local::{
    GenOptions, LocalModel, MODEL_ENV, THREADS_ENV, model_path_from_env, prefer_single_thread,
    server,
};

/// Local SmolLM2 model: OpenAI-compatible server and one-shot generation.
#[derive(Parser)]
#[command(name = "abstractgateway-llm", version)]
struct Cli {
    /// candle worker threads (default: $CANDLE_NUM_THREADS, else $RAYON_NUM_THREADS, else 1).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve POST /v1/chat/completions and GET /v1/models.
    Serve {
        /// GGUF model file (default: $ABSTRACTGATEWAY_LOCAL_MODEL, else $ABSTRACTGATEWAY_MODEL_DIR or ./models).
        #[arg(long, env = MODEL_ENV)]
        model: Option<PathBuf>,
        /// Port to listen on (0 picks a free one; the address is printed on stdout).
        #[arg(long, default_value_t = 8081)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// Answer one prompt, print the text and the speed.
    Generate {
        /// GGUF model file (same default as for serve).
        #[arg(long, env = MODEL_ENV)]
        model: Option<PathBuf>,
        /// Maximum tokens to generate.
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// 0 is greedy (deterministic).
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Sampler seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Optional system message.
        #[arg(long)]
        system: Option<String>,
        /// The user message.
        prompt: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // SAFETY: nothing else runs yet; the runtime and candle's workers start later.
    unsafe {
        match cli.threads {
            Some(n) => std::env::set_var(THREADS_ENV, n.max(1).to_string()),
            None => prefer_single_thread(),
        }
    }
    match cli.command {
        Command::Serve { model, port, host } => serve(model, &host, port),
        Command::Generate {
            model,
            max_tokens,
            temperature,
            seed,
            system,
            prompt,
        } => {
            let opts = GenOptions {
                max_tokens,
                temperature,
                seed,
                ..GenOptions::default()
            };
            generate(model, system, prompt, &opts)
        }
    }
}

/// Loads the model, reporting where from and how long it took.
fn load(model: Option<PathBuf>) -> anyhow::Result<LocalModel> {
    let path = model.unwrap_or_else(model_path_from_env);
    let started = Instant::now();
    let model = LocalModel::load(&path).with_context(|| {
        format!(
            "loading {} (scripts/fetch-model.sh downloads the default model)",
            path.display()
        )
    })?;
    let from = model.weights_path().unwrap_or(&path).display().to_string();
    eprintln!("loaded {from} in {:.2} s", started.elapsed().as_secs_f64());
    Ok(model)
}

fn serve(model: Option<PathBuf>, host: &str, port: u16) -> anyhow::Result<()> {
    let model = Arc::new(load(model)?);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .with_context(|| format!("binding {host}:{port}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // Scripts and tests read this line to learn the port.
        println!("listening on http://{addr}");
        std::io::stdout().flush().ok();
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        server::serve(listener, model, shutdown)
            .await
            .context("serving")
    })
}

fn generate(
    model: Option<PathBuf>,
    system: Option<String>,
    prompt: String,
    opts: &GenOptions,
) -> anyhow::Result<()> {
    let model = load(model)?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(("system".to_string(), system));
    }
    messages.push(("user".to_string(), prompt));
    let mut stdout = std::io::stdout();
    let generation = model.chat_streaming(&messages, opts, |text| {
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        true
    })?;
    println!();
    let t = generation.timings;
    eprintln!(
        "prompt: {} tokens in {:.2} s ({:.1} tok/s); completion: {} tokens, decode {:.1} tok/s; finish: {}",
        generation.prompt_tokens,
        t.prefill.as_secs_f64(),
        generation.prompt_tokens as f64 / t.prefill.as_secs_f64().max(f64::EPSILON),
        generation.completion_tokens,
        t.decode_tokens_per_sec(),
        generation.finish_reason.as_str(),
    );
    Ok(())
}
