//! Nova release names and major versions.
//!
//! Nova is versioned by a major number that increases by one per OpenStack
//! release: Icehouse is 9 (`2014.1`), Mitaka 13, Zed 26, and since 2023 the
//! releases also carry a year-based name (`2023.1` Antelope is 27).

use std::fmt;

/// A Nova major version, e.g. `NovaRelease(13)` for Mitaka.
///
/// Ordering follows release order, so `release >= NovaRelease::NEWTON` reads
/// as "Newton or later".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NovaRelease(pub u32);

/// Code names by major version, starting at [`FIRST_NAMED`].
const NAMES: [&str; 25] = [
    "icehouse",  // 9
    "juno",      // 10
    "kilo",      // 11
    "liberty",   // 12
    "mitaka",    // 13
    "newton",    // 14
    "ocata",     // 15
    "pike",      // 16
    "queens",    // 17
    "rocky",     // 18
    "stein",     // 19
    "train",     // 20
    "ussuri",    // 21
    "victoria",  // 22
    "wallaby",   // 23
    "xena",      // 24
    "yoga",      // 25
    "zed",       // 26
    "antelope",  // 27, 2023.1
    "bobcat",    // 28, 2023.2
    "caracal",   // 29, 2024.1
    "dalmatian", // 30, 2024.2
    "epoxy",     // 31, 2025.1
    "flamingo",  // 32, 2025.2
    "gazpacho",  // 33, 2026.1
];

/// Full names including the year-based version, for releases from 2023.1 on.
const FULL_NAMES: [&str; 7] = [
    "2023.1 antelope",
    "2023.2 bobcat",
    "2024.1 caracal",
    "2024.2 dalmatian",
    "2025.1 epoxy",
    "2025.2 flamingo",
    "2026.1 gazpacho",
];

/// Major version of the first release in [`NAMES`] (Icehouse).
const FIRST_NAMED: u32 = 9;
/// Major version of the first release with a year-based name (2023.1 Antelope).
const FIRST_YEAR_BASED: u32 = 27;
/// Accepted range of plain major numbers.
const MIN_MAJOR: u32 = 9;
const MAX_MAJOR: u32 = 99;

impl NovaRelease {
    /// Mitaka, Nova 13.
    pub const MITAKA: NovaRelease = NovaRelease(13);
    /// Newton, Nova 14.
    pub const NEWTON: NovaRelease = NovaRelease(14);
    /// The first release with `live_migration_with_native_tls`.
    pub const STEIN: NovaRelease = NovaRelease(19);

    /// Parses a release as a user would write it: a code name in any case
    /// (`"mitaka"`, `"Zed"`), a year-based version (`"2023.1"`, and the old
    /// `"2014.1"`..`"2015.1"`), a major number in 9..=99 (`"13"`), or the
    /// form returned by [`NovaRelease::name`] (`"2023.1 antelope"`).
    ///
    /// Returns `None` for anything else, including full versions like `"13.1.4"`.
    pub fn parse(s: &str) -> Option<NovaRelease> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            [word] => parse_word(word),
            // "2023.1 antelope" (or "antelope 2023.1"): both halves must agree.
            [a, b] => {
                let release = parse_word(a)?;
                (parse_word(b)? == release).then_some(release)
            }
            _ => None,
        }
    }

    /// Extracts the Nova major version from a distribution package version.
    ///
    /// Handles an epoch (`"2:26.2.2-1~deb12u1"`), a packaging revision
    /// (`"13.1.4-1.el7"`), and the year-based versions used up to Kilo
    /// (`"2014.1.3"` is Icehouse). Returns `None` for anything unrecognised.
    pub fn from_package_version(v: &str) -> Option<NovaRelease> {
        let v = v.trim();
        // Strip a Debian/RPM epoch ("2:").
        let upstream = match v.split_once(':') {
            Some((epoch, rest)) if !epoch.is_empty() && is_digits(epoch) => rest,
            Some(_) => return None,
            None => v,
        };
        let (major, rest) = leading_number(upstream)?;
        if major >= 2000 {
            let minor_text = rest.strip_prefix('.')?;
            let (minor, _) = leading_number(minor_text)?;
            return from_year(major, minor);
        }
        // The major must be followed by a version separator or the end.
        if !(rest.is_empty() || rest.starts_with('.')) {
            return None;
        }
        from_major(major)
    }

    /// The release's name: the code name (`"zed"`), prefixed with the
    /// year-based version from 2023.1 on (`"2023.1 antelope"`). `None` for
    /// majors this module does not know a name for.
    pub fn name(&self) -> Option<&'static str> {
        if self.0 >= FIRST_YEAR_BASED {
            FULL_NAMES
                .get((self.0 - FIRST_YEAR_BASED) as usize)
                .copied()
        } else if self.0 >= FIRST_NAMED {
            NAMES.get((self.0 - FIRST_NAMED) as usize).copied()
        } else {
            None
        }
    }
}

/// Formats as `"26 (zed)"`, or just `"40"` when the name is unknown.
impl fmt::Display for NovaRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({})", self.0, name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Parses one word: a code name, a year-based version or a major number.
fn parse_word(word: &str) -> Option<NovaRelease> {
    let lower = word.to_ascii_lowercase();
    if let Some(index) = NAMES.iter().position(|name| *name == lower) {
        return Some(NovaRelease(FIRST_NAMED + index as u32));
    }
    if let Some((year, half)) = lower.split_once('.') {
        if is_digits(year) && is_digits(half) {
            return from_year(year.parse().ok()?, half.parse().ok()?);
        }
        return None;
    }
    if is_digits(&lower) {
        return from_major(lower.parse().ok()?);
    }
    None
}

/// Maps a year-based version (`2014.1`, `2023.2`) to the major version.
fn from_year(year: u32, half: u32) -> Option<NovaRelease> {
    match (year, half) {
        (2014, 1) => Some(NovaRelease(9)),
        (2014, 2) => Some(NovaRelease(10)),
        (2015, 1) => Some(NovaRelease(11)),
        (2023.., 1 | 2) => {
            let major = FIRST_YEAR_BASED + (year - 2023) * 2 + (half - 1);
            from_major(major)
        }
        _ => None,
    }
}

/// Accepts a plain major version in the supported range.
fn from_major(major: u32) -> Option<NovaRelease> {
    (MIN_MAJOR..=MAX_MAJOR)
        .contains(&major)
        .then_some(NovaRelease(major))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits off the leading decimal number of `s`, returning it and the rest.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let number = s[..end].parse().ok()?;
    Some((number, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<u32>)] = &[
            ("mitaka", Some(13)),
            ("Mitaka", Some(13)),
            ("MITAKA", Some(13)),
            (" newton ", Some(14)),
            ("icehouse", Some(9)),
            ("juno", Some(10)),
            ("kilo", Some(11)),
            ("liberty", Some(12)),
            ("zed", Some(26)),
            ("antelope", Some(27)),
            ("2023.1", Some(27)),
            ("2023.2", Some(28)),
            ("bobcat", Some(28)),
            ("caracal", Some(29)),
            ("2024.2", Some(30)),
            ("epoxy", Some(31)),
            ("2025.1", Some(31)),
            ("flamingo", Some(32)),
            ("gazpacho", Some(33)),
            ("2026.1", Some(33)),
            ("2026.2", Some(34)),
            ("2014.1", Some(9)),
            ("2014.2", Some(10)),
            ("2015.1", Some(11)),
            ("13", Some(13)),
            ("9", Some(9)),
            ("99", Some(99)),
            ("2023.1 antelope", Some(27)),
            ("Antelope 2023.1", Some(27)),
            ("2023.1 bobcat", None),
            ("8", None),
            ("100", None),
            ("0", None),
            ("-13", None),
            ("+13", None),
            ("13.1.4", None),
            ("2015.2", None),
            ("2020.1", None),
            ("2023.3", None),
            ("2023.", None),
            (".1", None),
            ("", None),
            ("   ", None),
            ("havana", None),
            ("mitaka newton", None),
            ("a b c", None),
            ("zed!", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                NovaRelease::parse(input),
                expected.map(NovaRelease),
                "parse({input:?})"
            );
        }
    }

    #[test]
    fn from_package_version_table() {
        let cases: &[(&str, Option<u32>)] = &[
            ("2:26.2.2-1~deb12u1", Some(26)),
            ("26.2.2", Some(26)),
            ("13.1.4-1.el7", Some(13)),
            ("1:31.0.0-0ubuntu1", Some(31)),
            ("3:27.1.0-0ubuntu1~cloud0", Some(27)),
            ("2014.1.3", Some(9)),
            ("1:2014.2.4-0ubuntu1", Some(10)),
            ("2015.1.0", Some(11)),
            ("12.0.0.0rc1", Some(12)),
            ("20.6.1.dev12", Some(20)),
            ("26", Some(26)),
            ("2013.2.1", None),
            ("8.0.0", None),
            ("100.0.0", None),
            ("0.1", None),
            ("", None),
            ("garbage", None),
            ("1:", None),
            ("x:26.0.0", None),
            (":26.0.0", None),
            ("26a.0", None),
            ("2014", None),
            ("v26.1.0", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                NovaRelease::from_package_version(input),
                expected.map(NovaRelease),
                "from_package_version({input:?})"
            );
        }
    }

    #[test]
    fn names_and_display() {
        assert_eq!(NovaRelease::MITAKA.name(), Some("mitaka"));
        assert_eq!(NovaRelease::NEWTON.name(), Some("newton"));
        assert_eq!(NovaRelease(26).name(), Some("zed"));
        assert_eq!(NovaRelease(27).name(), Some("2023.1 antelope"));
        assert_eq!(NovaRelease(33).name(), Some("2026.1 gazpacho"));
        assert_eq!(NovaRelease(34).name(), None);
        assert_eq!(NovaRelease(8).name(), None);
        assert_eq!(NovaRelease(26).to_string(), "26 (zed)");
        assert_eq!(NovaRelease(27).to_string(), "27 (2023.1 antelope)");
        assert_eq!(NovaRelease(40).to_string(), "40");
        assert!(NovaRelease::MITAKA < NovaRelease::NEWTON);
    }

    #[test]
    fn every_named_release_round_trips() {
        for major in 9..=33 {
            let release = NovaRelease(major);
            let name = release.name().expect("named release");
            assert_eq!(NovaRelease::parse(name), Some(release), "{name}");
            assert_eq!(NovaRelease::parse(&major.to_string()), Some(release));
            let code_name = name.split_whitespace().last().unwrap();
            assert_eq!(NovaRelease::parse(code_name), Some(release), "{code_name}");
        }
    }
}
