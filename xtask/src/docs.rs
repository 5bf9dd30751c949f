//! `cargo xtask docs`: the user guide and API reference (docs/, Sphinx with MyST Markdown and
//! autodoc), built with warnings as errors into target/docs/html.
//!
//! The tools come from PyPI at pinned versions into target/venv, where pynto itself is built
//! (autodoc imports it). The code examples of the pages are run by pytest
//! (`pynto-py/tests/test_docs.py`), not here.

use crate::{prepare_venv, run, Ctx, Failure, Venv};

/// Sphinx and the Markdown parser, pinned: a new release must not break the build unasked.
const DOCS_TOOLS: &[&str] = &["sphinx==9.0.4", "myst-parser==5.2.0"];

pub(crate) fn docs_cmd(ctx: &Ctx) -> Result<(), Failure> {
    let venv = prepare_venv(ctx).map_err(|e| Failure::Message(format!("xtask docs: {e}")))?;
    build(ctx, &venv).map_err(|e| Failure::Message(format!("xtask docs: {e}")))?;
    println!(
        "xtask docs: {}",
        ctx.root.join("target/docs/html/index.html").display()
    );
    Ok(())
}

/// test-all step: runs after the Python step, which built pynto into target/venv.
pub(crate) fn docs_step(ctx: &Ctx) -> Result<(), String> {
    let venv = prepare_venv(ctx)?;
    build(ctx, &venv)
}

fn build(ctx: &Ctx, venv: &Venv) -> Result<(), String> {
    venv.ensure_pinned(&ctx.root, DOCS_TOOLS)?;
    // -W: warnings are errors; --keep-going: report them all; -E: no stale environment, so
    // a warning of an unchanged page is not hidden by the cache.
    run(venv.command(&ctx.root, &venv.python).args([
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-E",
        "-q",
        "-b",
        "html",
        "-d",
        "target/docs/doctrees",
        "docs",
        "target/docs/html",
    ]))
}
