//! Host tests of `log=` specs: levels, targets, and every refusal.

use super::*;
use std::string::ToString;

#[test]
fn a_bare_level_sets_the_default_in_any_case() {
    let spec = LogSpec::parse("DEBUG", Level::Info).unwrap();
    assert_eq!(spec.default, Level::Debug);
    assert_eq!(spec.targets(), []);
    assert_eq!(spec.max(), Level::Debug);
    assert_eq!(spec.level_of("pages"), Level::Debug);
    assert_eq!("Trace".parse::<Level>(), Ok(Level::Trace));
    assert_eq!("verbose".parse::<Level>(), Err(NotALevel));
}

#[test]
fn targets_get_their_own_levels_and_the_rest_the_default() {
    let spec = LogSpec::parse("pages:trace", Level::Info).unwrap();
    assert_eq!(spec.default, Level::Info);
    assert_eq!(spec.level_of("pages"), Level::Trace);
    assert_eq!(spec.level_of("heap"), Level::Info);
    assert_eq!(spec.max(), Level::Trace);

    let spec = LogSpec::parse("warn,heap:debug,pages:trace,heap:error", Level::Info).unwrap();
    assert_eq!(spec.default, Level::Warn);
    assert_eq!(
        spec.targets(),
        [("heap", Level::Error), ("pages", Level::Trace)]
    );
    assert_eq!(spec.to_string(), "warn,heap:error,pages:trace");
    // A target may be quieter than the default.
    let spec = LogSpec::parse("debug,paging:off", Level::Info).unwrap();
    assert_eq!(spec.level_of("paging"), Level::Off);
    assert_eq!(spec.max(), Level::Debug);
}

#[test]
fn malformed_specs_are_refused_with_the_word_at_fault() {
    let error = |text| LogSpec::parse(text, Level::Info).unwrap_err();
    assert_eq!(error("verbose"), LogSpecError::BadLevel("verbose"));
    assert_eq!(error("pages:loud"), LogSpecError::BadLevel("loud"));
    assert_eq!(error("pages:"), LogSpecError::BadLevel(""));
    assert_eq!(error(":debug"), LogSpecError::BadTarget(""));
    assert_eq!(error("pa-ges:debug"), LogSpecError::BadTarget("pa-ges"));
    assert_eq!(error("info,"), LogSpecError::EmptyItem);
    assert_eq!(error("info,debug"), LogSpecError::TwoDefaults);
    assert_eq!(
        error("a:info,b:info,c:info,d:info,e:info,f:info,g:info,h:info,i:info"),
        LogSpecError::TooManyTargets
    );
    assert_eq!(
        error("verbose").to_string(),
        "`verbose` is not a level (off, error, warn, info, debug, trace)"
    );
}
