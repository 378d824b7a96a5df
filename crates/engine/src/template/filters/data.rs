//! Filters on dicts and lists: `combine`, `dict2items`, `items2dict`, `flatten`, the set
//! operations, `product`, `random`, `extract`, `subelements` and `json_query`. They work on the engine's JSON values, which keeps
//! equality and key order exactly as the variables have them.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};
use rand::Rng as _;
use rand::SeedableRng as _;
use serde_json::{Map, Value as J};

use super::{from_json, invalid, to_json};

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten);
    env.add_filter("difference", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Difference)
    });
    env.add_filter("union", |a: Value, b: Value| set_op(&a, &b, SetOp::Union));
    env.add_filter("intersect", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Intersect)
    });
    env.add_filter("symmetric_difference", |a: Value, b: Value| {
        set_op(&a, &b, SetOp::Symmetric)
    });
    env.add_filter("product", product);
    env.add_filter("random", random);
    env.add_filter("extract", extract);
    env.add_filter("subelements", subelements);
    env.add_filter("json_query", json_query);
}

/// `data | json_query('servers[?status==`ACTIVE`].name')`: community.general's filter, a
/// JMESPath search (the `jmespath` crate implements the same specification Ansible's
/// Python library does).
fn json_query(data: Value, expr: String) -> Result<Value, Error> {
    let compiled = jmespath::compile(&expr).map_err(|e| {
        invalid(format!(
            "json_query: '{expr}' is not a JMESPath expression: {e}"
        ))
    })?;
    let data_in = data;
    let data = jmespath::Variable::from_serializable(to_json(&data_in))
        .map_err(|e| invalid(format!("json_query: {e}")))?;
    let found = compiled
        .search(data)
        .map_err(|e| invalid(format!("json_query: {e}")))?;
    let found: J =
        serde_json::to_value(&*found).map_err(|e| invalid(format!("json_query: {e}")))?;
    let mut orders = Vec::new();
    key_orders(&to_json(&data_in), &mut orders);
    Ok(from_json(&in_data_order(whole_numbers(found), &orders)))
}

/// The key order of every object in `v`.
fn key_orders(v: &J, out: &mut Vec<Vec<String>>) {
    match v {
        J::Object(m) => {
            out.push(m.keys().cloned().collect());
            m.values().for_each(|x| key_orders(x, out));
        }
        J::Array(a) => a.iter().for_each(|x| key_orders(x, out)),
        _ => {}
    }
}

/// The jmespath crate keeps objects in sorted maps; Python's library keeps the data's
/// order. An object of the result that has the keys of an object of the data gets that
/// object's order back (projections and selections of the data's own objects).
fn in_data_order(v: J, orders: &[Vec<String>]) -> J {
    match v {
        J::Object(m) => {
            let order = orders
                .iter()
                .find(|o| o.len() == m.len() && o.iter().all(|k| m.contains_key(k)));
            let mut m = m;
            let keys: Vec<String> = match order {
                Some(o) => o.clone(),
                None => m.keys().cloned().collect(),
            };
            J::Object(
                keys.into_iter()
                    .filter_map(|k| m.remove(&k).map(|x| (k, in_data_order(x, orders))))
                    .collect(),
            )
        }
        J::Array(a) => J::Array(a.into_iter().map(|x| in_data_order(x, orders)).collect()),
        other => other,
    }
}

/// JMESPath numbers are floats; Python's library keeps integers integers (`length()` is 3,
/// not 3.0), so whole values become integers again.
fn whole_numbers(v: J) -> J {
    match v {
        J::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => J::from(f as i64),
            _ => J::Number(n),
        },
        J::Array(a) => J::Array(a.into_iter().map(whole_numbers).collect()),
        J::Object(m) => J::Object(m.into_iter().map(|(k, x)| (k, whole_numbers(x))).collect()),
        other => other,
    }
}

/// `users | subelements('keys', skip_missing=True)`: `[user, key]` pairs (Ansible's core
/// filter; see [`crate::template::lookup::plugins::subelements_filter`]).
fn subelements(
    obj: Value,
    keys: Value,
    skip_missing: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let skip = match kwargs.get::<Option<Value>>("skip_missing")? {
        Some(v) => Some(v),
        None => skip_missing,
    };
    kwargs.assert_all_used()?;
    let skip = skip.is_some_and(|v| super::truthy(&v));
    crate::template::lookup::plugins::subelements_filter(&to_json(&obj), &to_json(&keys), skip)
        .map(|items| from_json(&J::Array(items)))
        .map_err(invalid)
}

/// `extract`: `key | extract(container, morekeys)` is `container[key][morekeys...]`, so
/// `groups.slaves | map('extract', hostvars, 'fixed_ip')` lists the slaves' addresses
/// (Ansible's core filter). A missing key is an error naming it (Ansible's undefined
/// value fails later with a vaguer message).
fn extract(key: Value, container: Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let more: Vec<Value> = match morekeys {
        None => vec![],
        Some(m) if m.kind() == minijinja::value::ValueKind::Seq => m.try_iter()?.collect(),
        Some(m) => vec![m],
    };
    let mut v = container;
    for k in std::iter::once(key).chain(more) {
        let next = v.get_item(&k)?;
        if next.is_undefined() {
            return Err(invalid(format!("extract: no key {k:?} in the container")));
        }
        v = next;
    }
    Ok(v)
}

fn list_of(v: &Value, filter: &str) -> Result<Vec<J>, Error> {
    match to_json(v) {
        J::Array(items) => Ok(items),
        J::Object(map) => Ok(map.keys().map(|k| J::String(k.clone())).collect()),
        J::String(s) => Ok(s.chars().map(|c| J::String(c.to_string())).collect()),
        other => Err(invalid(format!(
            "{filter} expects a list, got {}",
            type_word(&other)
        ))),
    }
}

fn map_of(v: &Value, filter: &str) -> Result<Map<String, J>, Error> {
    match to_json(v) {
        J::Object(map) => Ok(map),
        other => Err(invalid(format!(
            "{filter} expects a dictionary, got {}",
            type_word(&other)
        ))),
    }
}

fn type_word(v: &J) -> &'static str {
    match v {
        J::Null => "None",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a dictionary",
    }
}

/// `a | combine(b, c, recursive=False, list_merge='replace')`: later dicts win.
fn combine(base: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".into());
    kwargs.assert_all_used()?;
    if ![
        "replace",
        "keep",
        "append",
        "prepend",
        "append_rp",
        "prepend_rp",
    ]
    .contains(&list_merge.as_str())
    {
        return Err(invalid(format!(
            "combine: unknown list_merge {list_merge:?}"
        )));
    }
    let mut out = map_of(&base, "combine")?;
    for other in others.iter() {
        // `combine([a, b])` is accepted too: a list of dicts.
        let dicts = match to_json(other) {
            J::Array(items) => items,
            single => vec![single],
        };
        for d in dicts {
            let J::Object(d) = d else {
                return Err(invalid(format!(
                    "combine expects dictionaries, got {}",
                    type_word(&d)
                )));
            };
            merge(&mut out, d, recursive, &list_merge);
        }
    }
    Ok(from_json(&J::Object(out)))
}

fn merge(into: &mut Map<String, J>, from: Map<String, J>, recursive: bool, lists: &str) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(J::Object(a)), J::Object(b)) if recursive => merge(a, b, recursive, lists),
            (Some(J::Array(a)), J::Array(b)) if lists != "replace" => {
                let mut b = b;
                match lists {
                    "keep" => {}
                    "append" => a.append(&mut b),
                    "prepend" => {
                        b.append(a);
                        *a = b;
                    }
                    "append_rp" => {
                        a.retain(|x| !b.contains(x));
                        a.append(&mut b);
                    }
                    _ => {
                        // prepend_rp
                        a.retain(|x| !b.contains(x));
                        b.append(a);
                        *a = b;
                    }
                }
            }
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// `{'a': 1} | dict2items` → `[{'key': 'a', 'value': 1}]`.
fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let value = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kwargs.assert_all_used()?;
    let items: Vec<J> = map_of(&v, "dict2items")?
        .into_iter()
        .map(|(k, v)| {
            let mut m = Map::new();
            m.insert(key.clone(), J::String(k));
            m.insert(value.clone(), v);
            J::Object(m)
        })
        .collect();
    Ok(from_json(&J::Array(items)))
}

/// The inverse of `dict2items`.
fn items2dict(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let value = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kwargs.assert_all_used()?;
    let mut out = Map::new();
    for item in list_of(&v, "items2dict")? {
        let (Some(k), Some(val)) = (item.get(&key), item.get(&value)) else {
            return Err(invalid(format!(
                "items2dict: every item needs '{key}' and '{value}'"
            )));
        };
        let k = match k {
            J::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.insert(k, val.clone());
    }
    Ok(from_json(&J::Object(out)))
}

/// `list | flatten(levels=None, skip_nulls=True)`.
fn flatten(v: Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<usize>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    fn go(items: Vec<J>, levels: Option<usize>, skip_nulls: bool, out: &mut Vec<J>) {
        for item in items {
            match item {
                J::Array(inner) if levels != Some(0) => {
                    go(inner, levels.map(|l| l - 1), skip_nulls, out)
                }
                J::Null if skip_nulls => {}
                J::String(s) if skip_nulls && s == "None" => {}
                other => out.push(other),
            }
        }
    }
    let mut out = Vec::new();
    go(list_of(&v, "flatten")?, levels, skip_nulls, &mut out);
    Ok(from_json(&J::Array(out)))
}

enum SetOp {
    Difference,
    Union,
    Intersect,
    Symmetric,
}

/// Set operations keeping the first list's order and dropping duplicates, like Ansible.
fn set_op(a: &Value, b: &Value, op: SetOp) -> Result<Value, Error> {
    let a = list_of(a, "set operation")?;
    let b = list_of(b, "set operation")?;
    let candidates: Vec<J> = match op {
        SetOp::Difference => a.iter().filter(|x| !b.contains(x)).cloned().collect(),
        SetOp::Intersect => a.iter().filter(|x| b.contains(x)).cloned().collect(),
        SetOp::Union => a.iter().chain(b.iter()).cloned().collect(),
        SetOp::Symmetric => a
            .iter()
            .filter(|x| !b.contains(x))
            .chain(b.iter().filter(|x| !a.contains(x)))
            .cloned()
            .collect(),
    };
    let mut out: Vec<J> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(from_json(&J::Array(out)))
}

/// `a | product(b, ...)`: the cartesian product, as `itertools.product`.
fn product(first: Value, others: Rest<Value>) -> Result<Value, Error> {
    let mut acc: Vec<Vec<J>> = list_of(&first, "product")?
        .into_iter()
        .map(|x| vec![x])
        .collect();
    for other in others.iter() {
        let items = list_of(other, "product")?;
        acc = acc
            .into_iter()
            .flat_map(|prefix| {
                items.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    Ok(from_json(&J::Array(
        acc.into_iter().map(J::Array).collect(),
    )))
}

/// `list | random` picks an item; `n | random(start=0, step=1)` picks from `range(start, n, step)`.
/// `seed=` makes the choice repeatable (the sequence differs from Python's).
fn random(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let start = kwargs.get::<Option<i64>>("start")?.unwrap_or(0);
    let step = kwargs.get::<Option<i64>>("step")?.unwrap_or(1);
    let seed = kwargs.get::<Option<Value>>("seed")?;
    kwargs.assert_all_used()?;
    let mut rng = match seed {
        Some(s) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(s.to_string().as_bytes());
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&digest);
            rand::rngs::StdRng::from_seed(bytes)
        }
        None => rand::rngs::StdRng::from_os_rng(),
    };
    if let Some(end) = v.as_i64() {
        if step <= 0 || end <= start {
            return Err(invalid(format!(
                "random: empty range({start}, {end}, {step})"
            )));
        }
        let count = (end - start + step - 1) / step;
        return Ok(Value::from(start + step * rng.random_range(0..count)));
    }
    let items = list_of(&v, "random")?;
    if items.is_empty() {
        return Err(invalid("random: the list is empty"));
    }
    Ok(from_json(&items[rng.random_range(0..items.len())]))
}
