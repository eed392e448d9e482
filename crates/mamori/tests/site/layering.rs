//! Dependencies point down: the console depends on no component crate, and no
//! component crate on another (they meet through core types, the bus and the store).

use serde_json::Value;

fn metadata() -> Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata answers JSON")
}

fn deps(package: &Value) -> Vec<String> {
    package["dependencies"].as_array().into_iter().flatten().filter_map(|d| d["name"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_console_depends_on_no_component_crate() {
    let doc = metadata();
    let packages = doc["packages"].as_array().expect("packages");
    // A component crate builds on the runtime and is neither the binary nor the console.
    let components: Vec<String> = packages
        .iter()
        .filter(|p| deps(p).iter().any(|d| d == "mamori-runtime"))
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .filter(|n| n != "mamori" && n != "mamori-console")
        .collect();
    assert!(components.iter().any(|c| c == "mamori-monitor"), "{components:?}");
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default();
        if name == "mamori" {
            continue;
        }
        // Dev-dependencies count too: a test of the console must not need a component.
        let reached: Vec<String> = deps(p).into_iter().filter(|d| components.contains(d) && d != name).collect();
        assert!(reached.is_empty(), "{name} depends on the component crates {reached:?}");
    }
}
