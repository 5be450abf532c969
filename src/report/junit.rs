//! JUnit XML for CI systems: one test case per check (host checks, pair checks,
//! migrations). fail -> <failure>, skip -> <skipped>, warn passes with the
//! message in <system-out>.

use crate::checks::{Finding, Status};
use crate::report::Report;
use std::fmt::Write;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

fn case(out: &mut String, class: &str, f: &Finding) {
    let _ = write!(out, "    <testcase classname=\"{}\" name=\"{}\"", esc(class), esc(f.id));
    let body = std::iter::once(f.message.as_str()).chain(f.evidence.iter().map(String::as_str)).collect::<Vec<_>>().join("\n");
    match f.status {
        Status::Pass => out.push_str("/>\n"),
        Status::Warn => {
            let _ = write!(out, ">\n      <system-out>warning: {}</system-out>\n    </testcase>\n", esc(&body));
        }
        Status::Skip => {
            let _ = write!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", esc(&f.message));
        }
        Status::Fail => {
            let _ = write!(out, ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n", esc(&f.message), esc(f.id), esc(&body));
        }
    }
}

/// The report as one JUnit XML document.
pub fn write(report: &Report, suite: &str) -> String {
    let all: Vec<(String, &Finding)> = report
        .hosts
        .iter()
        .flat_map(|h| h.checks.iter().map(move |f| (h.name.clone(), f)))
        .chain(report.pairs.iter().flat_map(|p| p.checks.iter().map(move |f| (format!("{} -> {}", p.from, p.to), f))))
        .collect();
    let count = |s: Status| all.iter().filter(|(_, f)| f.status == s).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{2}\" skipped=\"{3}\" time=\"{4:.3}\">\n  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" skipped=\"{3}\" time=\"{4:.3}\">",
        esc(suite),
        all.len(),
        count(Status::Fail),
        count(Status::Skip),
        report.elapsed_ms as f64 / 1000.0
    );
    for (class, f) in &all {
        case(&mut out, class, f);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{HostReport, PairReport};

    #[test]
    fn junit_document() {
        let f = |id, status, msg: &str| Finding { id, status, message: msg.into(), evidence: vec!["a <b> & 'c'".into()] };
        let r = Report::with_pairs(
            vec![HostReport { name: "cmp1".into(), address: "x".into(), reached: true, elapsed_ms: 1, checks: vec![f("ssh.connect", Status::Pass, "ok"), f("libvirt.auth", Status::Warn, "none")] }],
            vec![PairReport { from: "cmp1".into(), to: "cmp2".into(), checks: vec![f("migration.live-block", Status::Fail, "port range 49152-49215 \"filtered\""), f("mesh.resolve", Status::Skip, "not probed")] }],
            1500,
        );
        let x = write(&r, "migready validate");
        assert!(x.contains("<testsuites name=\"migready validate\" tests=\"4\" failures=\"1\" skipped=\"1\" time=\"1.500\">"), "{x}");
        assert!(x.contains("<testcase classname=\"cmp1\" name=\"ssh.connect\"/>"), "{x}");
        assert!(x.contains("<testcase classname=\"cmp1 -&gt; cmp2\" name=\"migration.live-block\">\n      <failure message=\"port range 49152-49215 &quot;filtered&quot;\" type=\"migration.live-block\">port range 49152-49215 &quot;filtered&quot;\na &lt;b&gt; &amp; &apos;c&apos;</failure>"), "{x}");
        assert!(x.contains("<skipped message=\"not probed\"/>"), "{x}");
        assert!(x.contains("<system-out>warning: none"), "{x}");
        assert!(x.ends_with("</testsuite>\n</testsuites>\n"));
    }
}
