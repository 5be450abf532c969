//! `nft -j list ruleset` (libnftables-json(5)) into a [`Ruleset`]: the objects with
//! serde, the expressions (a polymorphic JSON value) by hand, anything unknown kept
//! as [`Expr::Other`] / [`Stmt::Other`] rather than refused.

use super::{Chain, Expr, Family, Hook, Rule, Ruleset, Set, Stmt, Table};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Doc {
    nftables: Vec<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct Metainfo {
    version: Option<String>,
}

#[derive(Deserialize)]
struct JTable {
    family: String,
    name: String,
    #[serde(default)]
    handle: u64,
}

#[derive(Deserialize)]
struct JChain {
    family: String,
    table: String,
    name: String,
    #[serde(default)]
    handle: u64,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    prio: Option<Value>,
    policy: Option<String>,
}

#[derive(Deserialize)]
struct JRule {
    family: String,
    table: String,
    chain: String,
    #[serde(default)]
    handle: u64,
    #[serde(default)]
    expr: Vec<Value>,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct JSet {
    family: String,
    table: String,
    name: String,
    #[serde(default)]
    flags: Value,
    #[serde(default)]
    elem: Vec<Value>,
    timeout: Option<Value>,
}

/// Parse the JSON listing. Objects other than tables, chains, rules, sets and maps
/// (flowtables, counters, quotas, ...) are passed over.
pub fn parse_json(text: &str) -> Result<Ruleset, String> {
    let doc: Doc = serde_json::from_str(text).map_err(|e| format!("not nft JSON: {e}"))?;
    let mut r = Ruleset::default();
    for obj in doc.nftables {
        let Some((kind, body)) = obj.into_iter().next() else { continue };
        let err = |e: serde_json::Error| format!("{kind} object: {e}");
        match kind.as_str() {
            "metainfo" => r.version = serde_json::from_value::<Metainfo>(body).map_err(err)?.version,
            "table" => {
                let t: JTable = serde_json::from_value(body).map_err(err)?;
                let Some(family) = Family::parse(&t.family) else { continue };
                r.tables.push(Table { family, name: t.name, handle: t.handle, chains: Vec::new(), sets: Vec::new() });
            }
            "chain" => {
                let c: JChain = serde_json::from_value(body).map_err(err)?;
                let hook = match (c.kind, c.hook) {
                    (Some(kind), Some(hook)) => Some(Hook { kind, hook, prio: prio(c.prio.as_ref()), policy_drop: c.policy.as_deref() == Some("drop") }),
                    _ => None,
                };
                let t = table(&mut r, &c.family, &c.table)?;
                t.chains.push(Chain { name: c.name, handle: c.handle, hook, rules: Vec::new() });
            }
            "rule" => {
                let j: JRule = serde_json::from_value(body).map_err(err)?;
                let t = table(&mut r, &j.family, &j.table)?;
                let Some(c) = t.chains.iter_mut().find(|c| c.name == j.chain) else {
                    return Err(format!("rule handle {} names chain {} that table {} {} does not have", j.handle, j.chain, j.family, j.table));
                };
                c.rules.push(Rule { handle: j.handle, stmts: j.expr.iter().map(stmt).collect(), comment: j.comment, text: None });
            }
            "set" | "map" => {
                let s: JSet = serde_json::from_value(body).map_err(err)?;
                let flags: Vec<&str> = match &s.flags {
                    Value::String(f) => vec![f.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let dynamic = flags.contains(&"dynamic") || flags.contains(&"timeout") || s.timeout.is_some();
                let elems = s.elem.iter().map(expr).collect();
                let t = table(&mut r, &s.family, &s.table)?;
                t.sets.push(Set { name: s.name, elems, dynamic, is_map: kind == "map" });
            }
            _ => {}
        }
    }
    Ok(r)
}

fn table<'a>(r: &'a mut Ruleset, family: &str, name: &str) -> Result<&'a mut Table, String> {
    let fam = Family::parse(family).ok_or_else(|| format!("unknown family {family}"))?;
    r.tables.iter_mut().find(|t| t.family == fam && t.name == name).ok_or_else(|| format!("object of table {family} {name}, which is not listed"))
}

/// Chain priorities are numbers in the JSON; older nft versions may print names.
fn prio(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.as_str() {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "filter" => 0,
            "security" => 50,
            "srcnat" => 100,
            other => other.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// One statement object (`{"match": {...}}`, `{"accept": null}`, ...).
fn stmt(v: &Value) -> Stmt {
    let Some((k, body)) = v.as_object().and_then(|o| (o.len() == 1).then(|| o.iter().next()).flatten()) else {
        return Stmt::Other(v.clone());
    };
    let target = || body.get("target").and_then(Value::as_str).map(str::to_string);
    match k.as_str() {
        "match" => {
            let (Some(op), Some(left), Some(right)) = (body.get("op").and_then(Value::as_str), body.get("left"), body.get("right")) else {
                return Stmt::Other(v.clone());
            };
            Stmt::Match { op: op.to_string(), left: expr(left), right: expr(right) }
        }
        "accept" => Stmt::Accept,
        "drop" => Stmt::Drop,
        "reject" => Stmt::Reject,
        "return" => Stmt::Return,
        "continue" => Stmt::Continue,
        "jump" => target().map_or_else(|| Stmt::Other(v.clone()), Stmt::Jump),
        "goto" => target().map_or_else(|| Stmt::Other(v.clone()), Stmt::Goto),
        "queue" => Stmt::Queue,
        "vmap" => match (body.get("key"), body.get("data")) {
            (Some(key), Some(data)) => Stmt::Vmap { key: expr(key), data: expr(data) },
            _ => Stmt::Other(v.clone()),
        },
        "limit" => Stmt::Stateful("a rate limit"),
        "quota" => Stmt::Stateful("a quota"),
        "ct count" => Stmt::Stateful("a connection count"),
        // Statements that do not decide where the packet goes.
        "counter" | "log" | "mangle" | "notrack" | "ct helper" | "ct timeout" | "ct expectation" | "secmark" | "dup" => Stmt::Nop,
        // Adding to a set is neutral unless it carries a stateful statement (a meter).
        "set" if body.get("stmt").is_none() => Stmt::Nop,
        "xt" => Stmt::Xt {
            target: body.get("type").and_then(Value::as_str) == Some("target"),
            name: body.get("name").and_then(Value::as_str).unwrap_or("?").to_string(),
        },
        _ => Stmt::Other(v.clone()),
    }
}

/// One expression (a value, a set, a payload field, ...).
pub(super) fn expr(v: &Value) -> Expr {
    match v {
        Value::Number(n) => n.as_u64().map_or_else(|| Expr::Other(v.clone()), Expr::Num),
        Value::String(s) => match s.strip_prefix('@') {
            Some(name) => Expr::SetRef(name.to_string()),
            None => Expr::Str(s.clone()),
        },
        Value::Bool(b) => Expr::Bool(*b),
        Value::Array(a) => Expr::List(a.iter().map(expr).collect()),
        Value::Null => Expr::Other(Value::Null),
        Value::Object(o) => {
            let Some((k, body)) = (o.len() == 1).then(|| o.iter().next()).flatten() else {
                return Expr::Other(v.clone());
            };
            let s = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
            match k.as_str() {
                "set" => match body {
                    Value::Array(a) => Expr::Set(a.iter().map(expr).collect()),
                    one => Expr::Set(vec![expr(one)]),
                },
                "prefix" => match (s("addr"), body.get("len").and_then(Value::as_u64)) {
                    (Some(addr), Some(len)) => Expr::Prefix { addr, len: len as u32 },
                    _ => Expr::Other(v.clone()),
                },
                "range" => match body.as_array().map(Vec::as_slice) {
                    Some([a, b]) => Expr::Range(Box::new(expr(a)), Box::new(expr(b))),
                    _ => Expr::Other(v.clone()),
                },
                "concat" => match body.as_array() {
                    Some(a) => Expr::Concat(a.iter().map(expr).collect()),
                    None => Expr::Other(v.clone()),
                },
                "payload" => match (s("protocol"), s("field")) {
                    (Some(protocol), Some(field)) => Expr::Payload { protocol, field },
                    _ => Expr::Other(v.clone()), // a raw payload (base, offset, len)
                },
                "meta" => s("key").map_or_else(|| Expr::Other(v.clone()), Expr::Meta),
                "ct" => match s("key") {
                    Some(key) => Expr::Ct { key, dir: s("dir") },
                    None => Expr::Other(v.clone()),
                },
                "&" => match body.as_array().map(Vec::as_slice) {
                    Some([a, b]) => Expr::And(Box::new(expr(a)), Box::new(expr(b))),
                    _ => Expr::Other(v.clone()),
                },
                // A set element with options (timeout, counter, comment): its value.
                "elem" => body.get("val").map_or_else(|| Expr::Other(v.clone()), expr),
                "accept" | "drop" | "reject" | "return" | "continue" | "jump" | "goto" | "queue" => Expr::Verdict(Box::new(stmt(v))),
                _ => Expr::Other(v.clone()),
            }
        }
    }
}
