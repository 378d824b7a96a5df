//! `template`: renders a controller-side Jinja file with the host's variables, then
//! puts the result on the host with `copy`'s semantics (checksum, mode, backup, diff).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::copy::{FileOpts, copy_content};
use crate::modules::args::Args;
use crate::modules::remote::basename;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Template;

const KNOWN: &[&str] = &[
    "src",
    "dest",
    "mode",
    "owner",
    "group",
    "backup",
    "force",
    "newline_sequence",
    "follow",
    "output_encoding",
    "unsafe_writes",
];

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["src"], &["dest"]],
            src_dir: Some("templates"),
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("template", args, KNOWN)?;
        let src = a.str("src")?;
        let dest = a.str("dest")?;
        let mut opts = FileOpts::read(&a)?;
        // Written escaped in playbooks (`'\r\n'`), as Ansible expects.
        let newline = match a.choice("newline_sequence", &["\\n", "\\r\\n", "\\r"], "\\n")? {
            "\\r\\n" => "\r\n",
            "\\r" => "\r",
            _ => "\n",
        };
        let local = ctx.find_file("templates", &src).ok_or_else(|| {
            a.err(
                "src",
                format!("'{src}' was not found in templates/ or next to the playbook"),
            )
        })?;
        // Ansible adds these to every template's context, over the task's own context
        // (the one its arguments see: `hostvars`, lazily rendered variables).
        let added = crate::template::file_vars(
            &src,
            &local,
            Some(&dest),
            !ctx.vars.contains_key("ansible_managed"),
        );
        let context = crate::template::context_with(ctx.context, &added);
        let mut text = ctx
            .templar
            .render_file(&local, &context)
            .map_err(|e| ModuleError::Failed(format!("template: {}", e.msg)))?;
        if newline != "\n" {
            text = text.replace('\n', newline);
        }
        if opts.mode == Some(crate::modules::args::Mode::Preserve) {
            use std::os::unix::fs::PermissionsExt;
            opts.mode = std::fs::metadata(&local)
                .ok()
                .map(|m| crate::modules::args::Mode::Octal(m.permissions().mode() & 0o7777));
        }
        let mut r = copy_content(
            ctx,
            "template",
            &dest,
            text.as_bytes(),
            Some(basename(&src)),
            &opts,
        )
        .await?;
        if let Some(d) = r.diff.as_mut() {
            d.after_header = local.display().to_string();
        }
        Ok(r.with("src", local.display().to_string()))
    }
}
