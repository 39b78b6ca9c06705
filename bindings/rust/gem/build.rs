//! gem-sys found libgem (see its build.rs) and passes the directory on as DEP_GEM_LIB_DIR: make
//! it an rpath of this crate's tests and examples so that they run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_GEM_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_GEM_LIB_DIR") {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir);
        }
    }
}
