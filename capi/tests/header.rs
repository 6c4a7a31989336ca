//! The committed header `capi/include/rocksmq.h` is what cbindgen makes of
//! the crate now; and it compiles as C. `ROCKSMQ_UPDATE_HEADER=1` rewrites
//! it instead of failing.

use std::path::Path;
use std::process::Command;

fn generated() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(crate_dir).join("cbindgen.toml"))
        .expect("capi/cbindgen.toml");
    let mut header = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut header);
    String::from_utf8(header).expect("the header is UTF-8")
}

#[test]
fn header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/rocksmq.h");
    let fresh = generated();
    if std::env::var_os("ROCKSMQ_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "capi/include/rocksmq.h is stale: regenerate it with \
         `ROCKSMQ_UPDATE_HEADER=1 cargo test --release -p rocksmq-capi --test header` and commit it"
    );
}

#[test]
fn header_compiles_as_c_and_cpp() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/rocksmq.h");
    for (compiler, language) in [("cc", "c"), ("c++", "c++")] {
        let output = Command::new(compiler)
            .args([
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-x",
                language,
            ])
            .arg(&path)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {compiler}: {error}"));
        assert!(
            output.status.success(),
            "{compiler} rejects the header: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
