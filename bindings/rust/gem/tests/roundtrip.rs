//! Round trip against the C command-line tool: import an SGLang routing file, map it with
//! policy gem and a fixed seed, export it for SGLang; the bindings and `gem` must write the
//! same map. Skipped, saying so, when the tool is not built.
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use gem::{ExportFormat, ImportFormat, Opt, Options, Policy, Profile, Trace};

fn cli() -> Option<PathBuf> {
    let mut cand = Vec::new();
    if let Some(p) = env::var_os("GEM_CLI") {
        cand.push(PathBuf::from(p));
    }
    if let Some(d) = env::var_os("GEM_LIBRARY_DIR") {
        cand.push(PathBuf::from(d).join("gem"));
    }
    cand.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../build/gem"));
    cand.into_iter().find(|p| p.is_file())
}

fn run(cli: &Path, args: &[&str]) {
    let out = Command::new(cli).args(args).output().expect("cannot run the gem tool");
    assert!(out.status.success(), "gem {} failed:\n{}{}", args.join(" "),
            String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn round_trip(name: &str, logical_count: &str) {
    let cli = match cli() {
        Some(c) => c,
        None => {
            eprintln!("round trip skipped: the gem tool is not built (GEM_CLI, \
                       GEM_LIBRARY_DIR/gem, build/gem)");
            return;
        }
    };
    let dir = env::temp_dir().join(format!("gem-rs-rt-{}-{}", name, std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    fs::write(p("in.json"), format!("{{\"logical_count\": {}}}", logical_count)).unwrap();
    Profile::sim(4, 0.077, 1).unwrap().write(p("p.json")).unwrap();

    run(&cli, &["import", "--format", "sglang", &p("in.json"), "-o", &p("t.csv")]);
    run(&cli, &["map", "--policy", "gem", "--profile", &p("p.json"), "--trace", &p("t.csv"),
                "-o", &p("m.json"), "--seed", "1"]);
    run(&cli, &["export", "--format", "sglang", "--mapping", &p("m.json"), "-o", &p("f.json")]);
    let expected = fs::read_to_string(p("f.json")).unwrap();

    let profile = Profile::read(p("p.json")).unwrap();
    let trace = Trace::import(ImportFormat::Sglang, p("in.json"), None).unwrap();
    let cli_trace = Trace::read(p("t.csv")).unwrap();
    assert_eq!(trace.to_csv().unwrap(), cli_trace.to_csv().unwrap(),
               "the bindings and the tool imported different traces");
    let mut opts = Options::new().unwrap();
    opts.set_int(Opt::Seed, 1).unwrap();
    let mapping = gem::compute_mapping(&profile, &trace, Policy::Gem, Some(&opts), None).unwrap();
    let got = mapping.export_string(ExportFormat::Sglang).unwrap();
    assert_eq!(squash(&got), squash(&expected));
    mapping.export(ExportFormat::Sglang, p("f2.json")).unwrap();
    assert_eq!(squash(&fs::read_to_string(p("f2.json")).unwrap()), squash(&expected));
    assert!(squash(&got).starts_with("{\"physical_to_logical_map\":[["), "{}", got);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn aggregate_counts() {
    // 2 layers x 16 experts: the importer draws steps of top-8 routing from the counts.
    round_trip("agg", "[[900, 40, 310, 15, 620, 75, 205, 30, 1200, 5, 60, 410, 90, 700, 20, 150], \
                        [120, 800, 95, 410, 60, 330, 25, 500, 10, 990, 45, 70, 640, 35, 280, 15]]");
}

#[test]
fn per_step_counts() {
    round_trip("steps", "[[[90, 4, 31, 2, 62, 7, 20, 3], [12, 80, 9, 41, 6, 33, 2, 50]], \
                          [[10, 60, 2, 40, 1, 33, 9, 0], [70, 2, 33, 1, 0, 44, 5, 20]], \
                          [[88, 1, 30, 0, 65, 9, 22, 1], [11, 79, 10, 40, 7, 30, 3, 49]], \
                          [[5, 5, 5, 5, 90, 80, 1, 1], [30, 30, 30, 30, 2, 2, 60, 60]]]");
}
