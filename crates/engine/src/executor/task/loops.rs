//! Loops: building the item list (`loop`, `with_*`) and running a task once per item.

use std::sync::Arc;

use super::{HostOutcome, Runner, is_include, skipped_result};
use crate::executor::events::Status;
use crate::executor::vars;
use crate::playbook::LoopKind;
use crate::template::TemplateError;
use crate::template::lookup::plugins::{self, LookupEnv};
use crate::template::pyjson::py_str;
use serde_json::{Value, json};
use std::time::Duration;

/// Why a loop's item list could not be built.
pub(super) enum LoopError {
    /// The loop value failed to template (an undefined variable, say).
    Template(HostOutcome),
    /// The value is not what the loop iterates over, or the loop kind is unsupported.
    Invalid(HostOutcome),
}

impl Runner<'_, '_> {
    pub(super) async fn run_loop(&self) -> HostOutcome {
        let items = match self.loop_items() {
            Ok(items) => items,
            // A value that is not a list fails whatever `when` says, as in Ansible.
            Err(LoopError::Invalid(out)) => return out,
            // As Ansible does: a loop that cannot be templated is an error only for a task
            // whose `when` (evaluated without an item) holds, so `loop: "{{ x }}"` with
            // `when: x is defined` skips when `x` is undefined.
            Err(LoopError::Template(out)) => {
                return match self.check_when(self.vars, self.ctx) {
                    Ok(false) => HostOutcome::new(
                        Status::Skipped,
                        skipped_result(&self.task.scope.when, self.vars, self.ctx, self.b),
                    ),
                    _ => out,
                };
            }
        };
        let lc = &self.task.loop_control;
        let loop_var = lc.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
        let mut includes = Vec::new();
        let n = items.len();
        if n == 0 {
            // Ansible's result for an empty loop: skipped, not ok.
            return HostOutcome::new(
                Status::Skipped,
                json!({"changed": false, "skipped": true, "skipped_reason": "No items in the list", "results": []}),
            );
        }
        // The variables every item starts from. As in Ansible, the facts an item sets
        // (`set_fact`, `include_vars`) are seen by the items after it, so
        // `acc: "{{ acc | default([]) + [item] }}"` accumulates.
        let mut base = self.vars.clone();
        // Every item's facts, later items winning: `run_once` gives them to all hosts,
        // as Ansible applies each item's facts to every host of the play.
        let mut facts: Option<(String, serde_json::Map<String, Value>)> = None;
        let delegated_facts = self.task.scope.kw.delegate_to.is_some()
            && self.flag(&self.task.scope.kw.delegate_facts, self.ctx);
        for (i, item) in items.iter().enumerate() {
            if i > 0
                && let Some(p) = lc.pause
            {
                tokio::time::sleep(Duration::from_secs_f64(p)).await;
            }
            let mut v = base.clone();
            v.insert(loop_var.clone(), item.clone());
            v.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
            if let Some(iv) = &lc.index_var {
                v.insert(iv.clone(), json!(i));
            }
            if lc.extended {
                v.insert(
                    "ansible_loop".into(),
                    json!({"index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == n, "length": n,
                           "revindex": n - i, "revindex0": n - i - 1, "allitems": items,
                           "previtem": if i > 0 { items[i - 1].clone() } else { Value::Null },
                           "nextitem": items.get(i + 1).cloned().unwrap_or(Value::Null)}),
                );
            }
            let v = Arc::new(v);
            let ctx = vars::context(v.clone(), &self.b.scope);
            let label = match &lc.label {
                Some(l) => self
                    .templar()
                    .render_value(l, &ctx)
                    .map(|x| py_str(&x))
                    .unwrap_or_else(|_| py_str(item)),
                None => py_str(item),
            };
            let mut out = match self.check_when(&v, &ctx) {
                Err(out) => out,
                Ok(false) => HostOutcome::new(
                    Status::Skipped,
                    skipped_result(&self.task.scope.when, &v, &ctx, self.b),
                ),
                Ok(true) => self.run_once_item(&v, &ctx, Some(&label)).await,
            };
            if let Some(m) = out.result.as_object_mut() {
                m.insert(loop_var.clone(), item.clone());
                m.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
                if let Some(iv) = &lc.index_var {
                    m.insert(iv.clone(), json!(i));
                    m.insert("ansible_index_var".into(), Value::String(iv.clone()));
                }
            }
            if let Some(item_facts) = out.facts.as_deref() {
                if !delegated_facts {
                    base.extend(item_facts.1.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                let (_, all) =
                    facts.get_or_insert_with(|| (item_facts.0.clone(), Default::default()));
                all.extend(item_facts.1.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            any_changed |= out.status == Status::Changed;
            any_failed |= matches!(out.status, Status::Failed | Status::Unreachable);
            all_skipped &= out.status == Status::Skipped;
            includes.append(&mut out.includes);
            if !is_include(self.task) || out.status == Status::Failed {
                self.emit(&out, &ctx, Some(label), false);
            }
            results.push(out.result);
        }
        let status = if any_failed {
            Status::Failed
        } else if all_skipped {
            Status::Skipped
        } else if any_changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let mut result = json!({"changed": any_changed, "results": results});
        let m = result.as_object_mut().expect("object literal");
        if any_failed {
            m.insert("failed".into(), json!(true));
            m.insert("msg".into(), json!("One or more items failed"));
        } else if all_skipped {
            m.insert("skipped".into(), json!(true));
            m.insert("msg".into(), json!("All items skipped"));
        } else {
            m.insert("msg".into(), json!("All items completed"));
        }
        let mut out = HostOutcome::new(status, result);
        out.includes = includes;
        out.facts = facts.map(Box::new);
        out
    }

    /// The list a loop iterates over, as each `with_*` lookup builds it.
    pub(super) fn loop_items(&self) -> Result<Vec<Value>, LoopError> {
        let spec = self.task.loop_.as_ref().expect("called for loops");
        let failure = |e| LoopError::Template(self.template_failure(&e, &spec.value.to_string()));
        let rendered = match (&spec.kind, &spec.value) {
            // As Ansible's `with_first_found`, names that are undefined are left out, so a
            // list can name `{{ ansible_distribution }}.yml` before a default.
            (LoopKind::Lookup(name), Value::Array(terms)) if name == "first_found" => Value::Array(
                terms
                    .iter()
                    .filter_map(|t| self.render_defined(t).transpose())
                    .collect::<Result<_, _>>()
                    .map_err(failure)?,
            ),
            _ => self
                .templar()
                .render_value(&spec.value, self.ctx)
                .map_err(failure)?,
        };
        self.items_of(&spec.kind, rendered)
            .map_err(LoopError::Invalid)
    }

    /// The items of a rendered loop value, as each kind of loop reads it.
    fn items_of(&self, kind: &LoopKind, rendered: Value) -> Result<Vec<Value>, HostOutcome> {
        let bad = |what: &str, got: &Value| {
            self.loop_failure(format!("Invalid data passed to '{what}', it requires a list, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.", py_str(got)))
        };
        match kind {
            LoopKind::Loop | LoopKind::List => match rendered {
                Value::Array(a) => Ok(a),
                other => Err(bad("loop", &other)),
            },
            LoopKind::Items => match rendered {
                Value::Array(a) => Ok(a
                    .into_iter()
                    .flat_map(|x| match x {
                        Value::Array(inner) => inner,
                        other => vec![other],
                    })
                    .collect()),
                Value::Null => Ok(Vec::new()),
                other => Ok(vec![other]),
            },
            LoopKind::Dict => {
                match rendered {
                    Value::Object(m) => Ok(m
                        .into_iter()
                        .map(|(k, v)| json!({"key": k, "value": v}))
                        .collect()),
                    other => Err(self
                        .loop_failure(format!("with_dict expects a dict, got {}", py_str(&other)))),
                }
            }
            LoopKind::Lookup(name) => {
                // Ansible's `with_<name>`: the lookup run on the loop's terms (a single
                // value is one term), with `wantlist=True`.
                let terms = match rendered {
                    Value::Array(a) => a,
                    Value::String(s) => vec![Value::String(s.trim().to_string())],
                    other => vec![other],
                };
                let var = |n: &str| {
                    use minijinja::value::ValueKind;
                    self.ctx
                        .get_attr(n)
                        .ok()
                        .filter(|v| !matches!(v.kind(), ValueKind::Undefined))
                        .map(|v| crate::template::to_json(&v))
                };
                let env = LookupEnv {
                    var: &var,
                    with_action: Some(&self.task.action),
                };
                match plugins::run(name, terms, &serde_json::Map::new(), &env) {
                    Some(Ok(items)) => Ok(items),
                    Some(Err(e)) => Err(self
                        .loop_failure(format!("The lookup plugin '{name}' failed: {e}"))),
                    None => Err(self.loop_failure(format!(
                        "'with_{name}': the lookup plugin '{name}' is not available (have: items, list, dict, {})",
                        plugins::PLUGINS.join(", ")
                    ))),
                }
            }
        }
    }

    /// A loop term rendered, or `None` when it (or, in a mapping, one of its entries'
    /// list items) reads an undefined variable: such names are dropped, not errors.
    fn render_defined(&self, v: &Value) -> Result<Option<Value>, TemplateError> {
        let dropped = |r: Result<Value, TemplateError>| match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.undefined.is_some() => Ok(None),
            Err(e) => Err(e),
        };
        match v {
            Value::Array(items) => Ok(Some(Value::Array(
                items
                    .iter()
                    .filter_map(|i| self.render_defined(i).transpose())
                    .collect::<Result<_, _>>()?,
            ))),
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, val) in m {
                    if let Some(r) = self.render_defined(val)? {
                        out.insert(k.clone(), r);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => dropped(self.templar().render_value(other, self.ctx)),
        }
    }

    /// A loop whose item list cannot be built fails the host with why, and where the task is.
    fn loop_failure(&self, why: String) -> HostOutcome {
        let loc = &self.task.loc;
        HostOutcome::new(
            Status::Failed,
            json!({"changed": false, "failed": true, "msg": format!(
                "{why}\n\nThe error appears to be in '{}': line {}, column {}, but may\nbe elsewhere in the file depending on the exact syntax problem.\n",
                loc.file().display(),
                loc.line,
                loc.col
            )}),
        )
    }
}
