//! `--limit PATTERN`: which hosts of the inventory a command handles, with
//! Ansible's pattern semantics for these forms:
//!
//! - `compute`, `cmp1`: a group's hosts, else the host of that name (a term with
//!   `.`, `*` or `?` is matched against both);
//! - `all` and `*`: every host; `ungrouped`: the hosts in no group;
//! - `comp*`, `cmp?`: globs over group and host names;
//! - `a:b`, `a,b`: the union; `&x`: only those also in x; `!x`: without those in x.
//!
//! As Ansible, the unions are taken first, then the intersections, then the
//! exclusions, whatever their order in the pattern; a pattern with only `&` and
//! `!` terms starts from `all`. Names are compared with case, as Ansible does.
//! Unlike Ansible (which warns), a term that matches no group and no host is an
//! error, and so is a pattern that leaves no host. Hosts keep inventory order.

use super::Inventory;

impl Inventory {
    /// Keeps the hosts `pattern` selects (see the module doc); an error names the
    /// pattern and the term at fault.
    pub fn limit(&mut self, pattern: &str) -> Result<(), String> {
        let keep = select(self, pattern)?;
        let mut index = 0;
        self.hosts.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        Ok(())
    }
}

/// Which hosts of `inv` the pattern selects, by index.
fn select(inv: &Inventory, pattern: &str) -> Result<Vec<bool>, String> {
    let terms: Vec<&str> = pattern.split([',', ':']).map(str::trim).filter(|t| !t.is_empty()).collect();
    if terms.is_empty() {
        return Err(format!("--limit {pattern:?}: no group or host named"));
    }
    let n = inv.hosts.len();
    let (mut unions, mut intersections, mut exclusions) = (Vec::new(), Vec::new(), Vec::new());
    for term in &terms {
        if let Some(t) = term.strip_prefix('&') {
            intersections.push(t);
        } else if let Some(t) = term.strip_prefix('!') {
            exclusions.push(t);
        } else {
            unions.push(*term);
        }
    }
    let mut selected = vec![unions.is_empty(); n];
    for term in unions {
        for (s, m) in selected.iter_mut().zip(matches(inv, pattern, term)?) {
            *s |= m;
        }
    }
    for term in intersections {
        for (s, m) in selected.iter_mut().zip(matches(inv, pattern, term)?) {
            *s &= m;
        }
    }
    for term in exclusions {
        for (s, m) in selected.iter_mut().zip(matches(inv, pattern, term)?) {
            *s &= !m;
        }
    }
    if !selected.contains(&true) {
        return Err(format!("--limit {pattern:?}: matches no host of {}", inv.path.display()));
    }
    Ok(selected)
}

/// The hosts one term matches, by index: the hosts of the groups it matches,
/// and, when it matches no group or is a glob or has a `.`, the hosts it names.
fn matches(inv: &Inventory, pattern: &str, term: &str) -> Result<Vec<bool>, String> {
    if term.is_empty() {
        return Err(format!("--limit {pattern:?}: '&' or '!' without a name after it"));
    }
    if let Some(c) = term.chars().find(|c| matches!(c, '~' | '@' | '[' | ']' | '&' | '!')) {
        return Err(format!(
            "--limit {pattern:?}: {term:?}: {c:?} is not supported (groups, host names, * and ? globs, \
             ',' or ':' unions, &intersection, !exclusion)"
        ));
    }
    let glob = Glob::new(term).map_err(|e| format!("--limit {pattern:?}: {e}"))?;
    let mut result = vec![false; inv.hosts.len()];
    let groups: Vec<&str> = inv.groups.iter().map(String::as_str).filter(|g| glob.matches(g)).collect();
    for (r, host) in result.iter_mut().zip(&inv.hosts) {
        *r = groups.iter().any(|g| match *g {
            "all" => true,
            "ungrouped" => host.groups.is_empty(),
            g => host.groups.iter().any(|hg| hg == g),
        });
    }
    let mut named = false;
    if groups.is_empty() || glob.is_glob() || term.contains('.') {
        for (r, host) in result.iter_mut().zip(&inv.hosts) {
            if glob.matches(&host.name) {
                *r = true;
                named = true;
            }
        }
    }
    if groups.is_empty() && !named {
        return Err(format!("--limit {pattern:?}: {term:?} matches no group and no host of {}", inv.path.display()));
    }
    Ok(result)
}

/// A shell-style glob (`*`, `?`), matched against a whole name, with case: a
/// regex of the escaped term, `*` and `?` turned into `.*` and `.`.
struct Glob {
    regex: regex::Regex,
    glob: bool,
}

impl Glob {
    fn new(pattern: &str) -> Result<Self, String> {
        let body = regex::escape(pattern).replace(r"\*", ".*").replace(r"\?", ".");
        Ok(Glob {
            regex: regex::Regex::new(&format!("^(?s:{body})$")).map_err(|e| format!("{pattern:?}: {e}"))?,
            glob: pattern.contains(['*', '?']),
        })
    }

    fn is_glob(&self) -> bool {
        self.glob
    }

    fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn globs() {
        for (p, s, m) in [
            ("cmp*", "cmp1", true),
            ("cmp*", "cmp", true),
            ("cmp*", "xcmp1", false),
            ("*", "", true),
            ("c?p1", "cmp1", true),
            ("c?p1", "cp1", false),
            ("*a*b", "xxaxxb", true),
            ("*a*b", "xxaxxbc", false),
            ("compute", "compute", true),
            ("compute", "Compute", false),
            ("a**", "a", true),
        ] {
            assert_eq!(Glob::new(p).unwrap().matches(s), m, "{p} {s}");
        }
    }
}
