//! Compiles `proto/*.proto` with protox (pure Rust), so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    println!("cargo:rerun-if-changed={dir}");
    let fds = protox::compile([format!("{dir}/cluster.proto")], [dir])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
