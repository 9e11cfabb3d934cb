//! Compiles `proto/*.proto` with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with `env!`: a target directory shared between
    // checkouts in different places reuses this compiled script.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")?;
    let dir = format!("{manifest}/../../proto");
    println!("cargo:rerun-if-changed={dir}");
    let fds = protox::compile(
        [format!("{dir}/cluster.proto"), format!("{dir}/node.proto")],
        [dir.as_str()],
    )?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
