//! Compiles every `.proto` under `proto/samsyn`, writes the descriptor set, and fails the
//! build when an RPC lacks its access annotation.

use std::path::{Path, PathBuf};

#[path = "src/access_check.rs"]
#[allow(dead_code)]
mod access_check;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): a build-script binary reused from a target directory
    // shared with another checkout must compile this checkout's protos.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = root.as_path();
    let mut protos = Vec::new();
    collect_protos(&root.join("samsyn"), &mut protos)?;
    protos.sort();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("samsyn_descriptor.bin");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(config, &protos, &[root.to_path_buf()])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    if let Err(problems) = access_check::read_access_table(&descriptor_set) {
        for problem in &problems {
            println!("cargo::error={problem}");
        }
        return Err(format!("{} rpc(s) fail the access annotation check", problems.len()).into());
    }
    println!("cargo::rerun-if-changed=samsyn");
    println!("cargo::rerun-if-changed=src/access_check.rs");
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
