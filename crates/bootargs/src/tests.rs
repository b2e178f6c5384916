//! Host tests of the command-line grammar and the typed lookups.

use super::*;
use std::vec::Vec;

fn args(line: &str) -> Vec<Result<Arg<'_>, SyntaxError>> {
    BootArgs::new(line).iter().collect()
}

fn kv<'a>(key: &'a str, value: &'a str) -> Result<Arg<'a>, SyntaxError> {
    Ok(Arg {
        key,
        value: Some(value),
    })
}

fn flag(key: &str) -> Result<Arg<'_>, SyntaxError> {
    Ok(Arg { key, value: None })
}

#[test]
fn splits_pairs_and_flags_on_any_whitespace() {
    assert_eq!(
        args("  log=debug\tquiet \n smp=4 empty= "),
        [
            kv("log", "debug"),
            flag("quiet"),
            kv("smp", "4"),
            kv("empty", "")
        ]
    );
    assert_eq!(args(""), []);
    assert_eq!(args("   "), []);
}

#[test]
fn quoted_values_keep_spaces_and_equals() {
    assert_eq!(
        args(r#"cmds="meminfo; alloc 64" x=a=b last="""#),
        [
            kv("cmds", "meminfo; alloc 64"),
            kv("x", "a=b"),
            kv("last", "")
        ]
    );
}

#[test]
fn malformed_lines_give_offsets_and_stop() {
    assert_eq!(
        args(r#"a=1 b="open"#),
        [
            kv("a", "1"),
            Err(SyntaxError::UnterminatedQuote { offset: 6 })
        ]
    );
    assert_eq!(args("=5 a=1"), [Err(SyntaxError::EmptyKey { offset: 0 })]);
    assert_eq!(
        args(r#"ke"y=1"#),
        [Err(SyntaxError::StrayQuote { offset: 2 })]
    );
    assert_eq!(
        args(r#"k=ab"c"#),
        [Err(SyntaxError::StrayQuote { offset: 4 })]
    );
    assert_eq!(
        args(r#"k="ab"c d"#),
        [Err(SyntaxError::TrailingAfterQuote { offset: 6 })]
    );
    assert_eq!(
        BootArgs::new("ok =x").validate(),
        Err(SyntaxError::EmptyKey { offset: 3 })
    );
    assert_eq!(BootArgs::new("ok x=1").validate(), Ok(()));
}

#[test]
fn last_occurrence_wins() {
    let line = BootArgs::new("log=info x log=trace");
    assert_eq!(
        line.get("log"),
        Ok(Some(Arg {
            key: "log",
            value: Some("trace")
        }))
    );
    assert_eq!(line.get("nope"), Ok(None));
    assert_eq!(line.has("x"), Ok(true));
}

#[test]
fn typed_lookup_reports_missing_and_bad_values() {
    let line = BootArgs::new("harts=4 mem=lots flag");
    assert_eq!(line.parse::<u32>("harts"), Ok(Some(4)));
    assert_eq!(line.parse::<u32>("absent"), Ok(None));
    assert_eq!(
        line.parse::<u32>("flag"),
        Err(ArgError::MissingValue { key: "flag" })
    );
    let Err(ArgError::BadValue { key, value, .. }) = line.parse::<u64>("mem") else {
        panic!("mem=lots must not parse as a number");
    };
    assert_eq!((key, value), ("mem", "lots"));
    let bad = BootArgs::new("a=\"x");
    assert_eq!(
        bad.parse::<u32>("a"),
        Err(ArgError::Syntax(SyntaxError::UnterminatedQuote {
            offset: 2
        }))
    );
}

#[test]
fn lookups_refuse_an_empty_value_for_every_key() {
    let line = BootArgs::new(r#"memdebug= alloc= log="" cmds=meminfo quiet"#);
    for key in ["memdebug", "alloc", "log"] {
        assert_eq!(line.value(key), Err(ArgError::EmptyValue { key }));
        assert_eq!(
            line.parse::<u32>(key),
            Err(ArgError::EmptyValue { key }),
            "{key}"
        );
    }
    assert_eq!(line.value("cmds"), Ok(Some("meminfo")));
    assert_eq!(line.value("absent"), Ok(None));
    // A bare flag is still a flag, and still no value.
    assert_eq!(line.has("quiet"), Ok(true));
    assert_eq!(
        line.value("quiet"),
        Err(ArgError::MissingValue { key: "quiet" })
    );
    // The grammar keeps the empty value; only the lookups refuse it.
    assert_eq!(
        line.get("memdebug"),
        Ok(Some(Arg {
            key: "memdebug",
            value: Some("")
        }))
    );
    assert_eq!(line.validate(), Ok(()));
}

#[test]
fn the_last_occurrence_decides_whether_a_value_is_empty() {
    assert_eq!(
        BootArgs::new("log=debug log=").value("log"),
        Err(ArgError::EmptyValue { key: "log" })
    );
    assert_eq!(
        BootArgs::new("log= log=debug").value("log"),
        Ok(Some("debug"))
    );
    assert_eq!(
        BootArgs::new("log= log").value("log"),
        Err(ArgError::MissingValue { key: "log" })
    );
}

#[test]
fn errors_render_for_the_boot_log() {
    let line = BootArgs::new("n=x");
    let error = line.parse::<u8>("n").unwrap_err();
    assert_eq!(
        std::format!("{error}"),
        "boot argument `n=x`: invalid digit found in string"
    );
    assert_eq!(
        std::format!("{}", BootArgs::new("n=").parse::<u8>("n").unwrap_err()),
        "boot argument `n=` has an empty value"
    );
    assert_eq!(
        std::format!("{}", SyntaxError::UnterminatedQuote { offset: 3 }),
        "unterminated quote at byte 3"
    );
}

#[test]
fn non_ascii_text_is_kept_intact() {
    assert_eq!(args("name=héllo ünï"), [kv("name", "héllo"), flag("ünï")]);
}
