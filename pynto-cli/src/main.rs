//! `pynto`: the command-line client. Not yet built; see the CLI issue.
fn main() {
    eprintln!("pynto: the command-line client is not built yet");
    std::process::exit(2);
}
