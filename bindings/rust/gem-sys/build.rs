//! Finds libgem for linking, in the order the Python package uses:
//!
//! 1. `GEM_LIBRARY_DIR`: a directory holding libgem.so (an error if it does not);
//! 2. `GEM_BUILD_DIR`, then the repository's `build/` (this crate is `bindings/rust/gem-sys`);
//! 3. `pkg-config --libs-only-L libgem`, when a pkg-config binary exists and knows libgem;
//! 4. otherwise the linker's default search path.
//!
//! The directory found is passed on to dependent build scripts as `DEP_GEM_LIB_DIR` (this crate
//! `links = "gem"`), and becomes an rpath of this crate's own tests, so that they run without
//! LD_LIBRARY_PATH. No build-dependency crates are used.
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn has_lib(dir: &Path) -> bool {
    dir.join("libgem.so").exists()
}

fn from_pkg_config() -> Option<Vec<PathBuf>> {
    let exe = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(exe).args(&["--libs-only-L", "libgem"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.split_whitespace()
            .filter_map(|w| w.strip_prefix("-L"))
            .map(PathBuf::from)
            .collect(),
    )
}

fn find() -> Vec<PathBuf> {
    if let Some(dir) = env::var_os("GEM_LIBRARY_DIR") {
        let dir = PathBuf::from(dir);
        if !has_lib(&dir) {
            panic!("GEM_LIBRARY_DIR={} holds no libgem.so", dir.display());
        }
        return vec![dir];
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut tree = Vec::new();
    if let Some(dir) = env::var_os("GEM_BUILD_DIR") {
        tree.push(PathBuf::from(dir));
    }
    tree.push(manifest.join("..").join("..").join("..").join("build"));
    for dir in tree {
        if has_lib(&dir) {
            return vec![dir.canonicalize().unwrap_or(dir)];
        }
    }
    match from_pkg_config() {
        Some(dirs) => dirs,
        None => {
            println!(
                "cargo:warning=libgem not found in GEM_LIBRARY_DIR, the build tree or \
                 pkg-config; relying on the linker's default path"
            );
            Vec::new()
        }
    }
}

fn main() {
    for var in &["GEM_LIBRARY_DIR", "GEM_BUILD_DIR", "PKG_CONFIG_PATH", "PKG_CONFIG"] {
        println!("cargo:rerun-if-env-changed={}", var);
    }
    println!("cargo:rerun-if-changed=build.rs");
    let dirs = find();
    for dir in &dirs {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    if let Some(first) = dirs.first() {
        println!("cargo:lib_dir={}", first.display());
    }
    println!("cargo:rustc-link-lib=dylib=gem");
}
