//! The libgem pipeline from Rust: profile (emulated GPUs), trace (imported or synthesized),
//! classification, placement with policy gem, evaluation against the default placement, and
//! an SGLang export (`--init-expert-location`).
//!
//!   cargo run --example pipeline -- [--import FORMAT PATH] [--gpus N] [--seed N] [--out PATH]
use std::env;
use std::path::PathBuf;
use std::process;

use gem::{ExpertClass, ExportFormat, ImportFormat, Opt, Options, Policy, Profile, Trace};

struct Args {
    import: Option<(ImportFormat, String)>,
    gpus: i32,
    seed: i64,
    out: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!("usage: pipeline [--import FORMAT PATH] [--gpus N] [--seed N] [--out PATH]");
    process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args { import: None, gpus: 4, seed: 1, out: None };
    let argv: Vec<String> = env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let next = |k: usize| argv.get(i + k).cloned().unwrap_or_else(|| usage());
        match argv[i].as_str() {
            "--import" => {
                let fmt = next(1).parse::<ImportFormat>().unwrap_or_else(|e| {
                    eprintln!("pipeline: {}", e);
                    process::exit(2)
                });
                a.import = Some((fmt, next(2)));
                i += 3;
                continue;
            }
            "--gpus" => a.gpus = next(1).parse().unwrap_or_else(|_| usage()),
            "--seed" => a.seed = next(1).parse().unwrap_or_else(|_| usage()),
            "--out" => a.out = Some(PathBuf::from(next(1))),
            _ => usage(),
        }
        i += 2;
    }
    a
}

fn run(args: &Args) -> gem::Result<()> {
    println!("libgem {}", gem::version_string());
    let profile = Profile::sim(args.gpus, 0.077, args.seed)?;
    let speeds: Vec<String> = profile.speeds()?.iter().map(|s| format!("{:.3}", s)).collect();
    println!("profile: {} emulated GPUs, relative speeds {}", profile.num_gpus(), speeds.join(", "));

    let mut opts = Options::new()?;
    opts.set_int(Opt::Seed, args.seed)?;
    let (trace, how) = match &args.import {
        Some((fmt, path)) => {
            let (t, note) = Trace::import_with_note(*fmt, path, Some(&opts))?;
            if !note.is_empty() {
                println!("import note: {}", note);
            }
            (t, format!("imported from {}", path))
        }
        None => (Trace::synthesize(64, 8, 16, 8192, 0.7, Some(&opts))?, "synthesized".to_string()),
    };
    let (steps, layers, experts) = trace.shape();
    println!("trace: {}, {} steps x {} layers x {} experts", how, steps, layers, experts);

    let cls = gem::classify(&trace, None)?;
    let mut counts = [0usize; 3];
    for l in 0..layers {
        for e in 0..experts {
            counts[cls.get(l, e)?.class as usize] += 1;
        }
    }
    let classes: Vec<String> = ExpertClass::ALL.iter()
        .map(|c| format!("{} {}", counts[*c as usize], c.name())).collect();
    println!("classes: {}", classes.join(", "));

    let default = gem::compute_mapping(&profile, &trace, Policy::Contiguous, None, None)?;
    let mapping = gem::compute_mapping(&profile, &trace, Policy::Gem, Some(&opts), Some(&cls))?;
    let before = gem::evaluate(&profile, &trace, &default, None)?;
    let after = gem::evaluate(&profile, &trace, &mapping, None)?;
    println!("contiguous: mean {:.1} us, p90 {:.1} us", before.mean(), before.p90());
    println!("gem:        mean {:.1} us, p90 {:.1} us ({:.2}x faster mean; lower bound {:.1} us)",
             after.mean(), after.p90(), before.mean() / after.mean(), after.lower_bound());

    let out = match &args.out {
        Some(p) => p.clone(),
        None => env::temp_dir().join(format!("gem-sglang-{}.json", process::id())),
    };
    mapping.export(ExportFormat::Sglang, &out)?;
    let text: String = mapping.export_string(ExportFormat::Sglang)?
        .chars().filter(|c| !c.is_whitespace()).collect();
    // {"physical_to_logical_map":[[...layer 0...],...]}
    let layer0 = text.split("[[").nth(1).and_then(|t| t.split(']').next()).unwrap_or("");
    println!("exported SGLang expert locations to {} ({} layers); layer 0: [{}]", out.display(),
             mapping.shape().1, layer0.replace(',', ", "));
    Ok(())
}

fn main() {
    let args = parse_args();
    if let Err(e) = run(&args) {
        eprintln!("pipeline: {}", e);
        process::exit(1);
    }
}
