//! Machine type for the test guest: the newest `pc-i440fx-X.Y` both hosts offer.
//! A guest started on a newer QEMU with its newest machine type cannot run on an
//! older QEMU that does not know that type; a type known to both can migrate
//! either way.

/// `pc-i440fx-7.2` -> (7, 2).
fn version(machine: &str) -> Option<(u32, u32)> {
    let v = machine.strip_prefix("pc-i440fx-")?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The newest versioned i440fx machine type of a list.
pub fn newest(types: &[String]) -> Option<&str> {
    types.iter().filter_map(|t| version(t).map(|v| (v, t.as_str()))).max().map(|(_, t)| t)
}

/// The newest versioned i440fx machine type both lists hold.
pub fn common(a: &[String], b: &[String]) -> Option<String> {
    a.iter()
        .filter(|t| b.contains(t))
        .filter_map(|t| version(t).map(|v| (v, t)))
        .max()
        .map(|(_, t)| t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newest_common_is_numeric_not_lexical() {
        let bookworm = list(&["pc", "pc-i440fx-2.10", "pc-i440fx-2.9", "pc-i440fx-7.1", "pc-i440fx-7.2", "pc-q35-7.2", "q35"]);
        let trixie = list(&["pc", "pc-i440fx-10.0", "pc-i440fx-2.10", "pc-i440fx-7.2", "pc-i440fx-9.2", "pc-q35-10.0"]);
        assert_eq!(newest(&trixie), Some("pc-i440fx-10.0"));
        assert_eq!(common(&bookworm, &trixie).as_deref(), Some("pc-i440fx-7.2"));
        assert_eq!(common(&trixie, &bookworm).as_deref(), Some("pc-i440fx-7.2"));
        assert_eq!(common(&list(&["pc-i440fx-2.9", "pc-i440fx-2.10"]), &list(&["pc-i440fx-2.9", "pc-i440fx-2.10"])).as_deref(), Some("pc-i440fx-2.10"));
        assert_eq!(common(&list(&["pc-i440fx-9.0"]), &list(&["pc-i440fx-7.2", "pc"])), None);
    }

    #[test]
    fn from_real_capabilities() {
        use crate::checks::testutil::raw;
        use crate::facts::HostFacts;
        let b = HostFacts::from_raw(raw("bookworm-socket"));
        let t = HostFacts::from_raw(raw("trixie-socket"));
        assert_eq!(common(&t.machine_types, &b.machine_types).as_deref(), Some("pc-i440fx-7.2"));
        assert_eq!(common(&t.machine_types, &t.machine_types).as_deref(), Some("pc-i440fx-10.0"));
    }
}
