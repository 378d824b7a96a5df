//! The bundled `playbooks/` and `roles/` are embedded with `include_dir!`, which cargo does
//! not know to watch: without this, editing a role would not rebuild the binary.
fn main() {
    println!("cargo:rerun-if-changed=playbooks");
    println!("cargo:rerun-if-changed=roles");
    println!("cargo:rerun-if-changed=build.rs");
}
