//! The hand-written declarations of src/lib.rs must match include/gem.h exactly: same
//! functions, same parameter and return types (after the C -> Rust type mapping below).
use std::collections::BTreeMap;
use std::path::Path;

/// Removes /* ... */ comments.
fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = match rest[i + 2..].find("*/") {
            Some(j) => &rest[i + 2 + j + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The Rust spelling of a C type ("const gem_trace_t *" -> "*const gem_trace_t").
fn rust_type(c: &str) -> String {
    let c = c.replace('*', " * ");
    let words: Vec<&str> = c.split_whitespace().collect();
    let mut base = "";
    let mut base_const = false;
    let mut stars = Vec::new(); // constness of what each level points to
    for w in &words {
        match *w {
            "const" if base.is_empty() => base_const = true,
            "const" => {}
            "*" => {
                stars.push(if stars.is_empty() { base_const } else { false });
            }
            other => base = other,
        }
    }
    let base = match base {
        "int32_t" => "i32",
        "int64_t" => "i64",
        "uint64_t" => "u64",
        "size_t" => "usize",
        "double" => "f64",
        "int" => "c_int",
        "unsigned" => "c_uint",
        "char" => "c_char",
        "void" => "c_void",
        other => other,
    };
    let mut t = base.to_string();
    for is_const in stars {
        t = format!("*{} {}", if is_const { "const" } else { "mut" }, t);
    }
    t
}

/// name -> (parameter types, return type) from gem.h.
fn header_decls(text: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let text = strip_comments(text);
    let mut out = BTreeMap::new();
    for chunk in text.split("GEM_API").skip(1) {
        let decl = match chunk.find(';') {
            Some(i) => &chunk[..i],
            None => continue,
        };
        if decl.contains("__attribute__") || !decl.contains('(') {
            continue; // the macro's own definition
        }
        let open = decl.find('(').unwrap();
        let head = squash(&decl[..open]);
        let (ret, name) = head.rsplit_once(' ').unwrap();
        let (ret, name) = if let Some(n) = name.strip_prefix('*') {
            (format!("{} *", ret), n.to_string())
        } else {
            (ret.to_string(), name.to_string())
        };
        let params = squash(&decl[open + 1..decl.rfind(')').unwrap()]);
        let types = if params == "void" || params.is_empty() {
            Vec::new()
        } else {
            params.split(',').map(|p| {
                let p = p.trim().replace('*', " * ");
                let (ty, _name) = p.trim().rsplit_once(' ').unwrap();
                rust_type(ty)
            }).collect()
        };
        let ret = if ret == "void" { String::new() } else { rust_type(&ret) };
        out.insert(name, (types, ret));
    }
    out
}

/// name -> (parameter types, return type) from the extern blocks of lib.rs.
fn rust_decls(text: &str) -> BTreeMap<String, (Vec<String>, String)> {
    let mut out = BTreeMap::new();
    for chunk in text.split("pub fn ").skip(1) {
        let decl = &chunk[..chunk.find(';').unwrap_or(chunk.len())];
        if !decl.starts_with("gem_") || decl.contains('{') {
            continue;
        }
        let open = decl.find('(').unwrap();
        let close = decl.rfind(')').unwrap();
        let name = decl[..open].to_string();
        let params = squash(&decl[open + 1..close]);
        let types = params.split(',').map(|p| p.trim()).filter(|p| !p.is_empty())
            .map(|p| squash(p.split_once(':').unwrap().1)).collect();
        let ret = squash(decl[close + 1..].trim().trim_start_matches("->"));
        out.insert(name, (types, ret));
    }
    out
}

#[test]
fn declarations_match_gem_h() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = match std::fs::read_to_string(root.join("../../../include/gem.h")) {
        Ok(h) => h,
        Err(_) => {
            eprintln!("include/gem.h not found next to the crate; skipped");
            return;
        }
    };
    let c = header_decls(&header);
    let rust = rust_decls(include_str!("../src/lib.rs"));
    assert!(c.len() >= 101, "parsed only {} declarations of gem.h", c.len());
    for (name, decl) in &c {
        let r = rust.get(name).unwrap_or_else(|| panic!("{} is not declared in gem-sys", name));
        // Function pointer parameters are spelled by their aliases on both sides.
        assert_eq!(r, decl, "{}: gem-sys (left) differs from gem.h (right)", name);
    }
    for name in rust.keys() {
        assert!(c.contains_key(name), "gem-sys declares {}, which gem.h does not", name);
    }
}
