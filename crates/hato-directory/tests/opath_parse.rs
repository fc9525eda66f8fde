//! Parser tests: syntax, precedence, quoting, errors and their positions,
//! the 2,048-character limit, canonical text.

use hato_directory::opath::{
    Filter, FilterError, FilterErrorKind, MAX_FILTER_LENGTH, Operator, Property, Value, parse,
};

fn cmp(property: Property, operator: Operator, value: Value) -> Filter {
    Filter::compare(property, operator, value).expect("valid comparison")
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn dept(s: &str) -> Filter {
    cmp(Property::Department, Operator::Eq, text(s))
}

fn err(input: &str) -> FilterError {
    match parse(input) {
        Ok(f) => panic!("{input:?} parsed as {f:?}"),
        Err(e) => e,
    }
}

fn assert_err(input: &str, position: usize, kind: FilterErrorKind) -> FilterError {
    let e = err(input);
    assert_eq!((e.position, e.kind), (position, kind), "{input:?}: {e}");
    e
}

#[test]
fn each_operator_parses() {
    for op in Operator::ALL {
        let f = parse(&format!("Department {} 'Sales*'", op.name()))
            .unwrap_or_else(|e| panic!("{}: {e}", op.name()));
        let Filter::Comparison(c) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(c.property(), Property::Department);
        assert_eq!(c.operator(), op);
        assert_eq!(c.value(), &text("Sales*"));
    }
}

#[test]
fn operators_and_keywords_ignore_case() {
    let upper = parse("Department -EQ 'a' -AND -NOT Office -LiKe 'b*' -oR City -NotLike 'c'")
        .expect("parses");
    let lower = parse("Department -eq 'a' -and -not Office -like 'b*' -or City -notlike 'c'")
        .expect("parses");
    assert_eq!(upper, lower);
    for op in Operator::ALL {
        assert_eq!(Operator::parse(&op.name().to_uppercase()), Some(op));
    }
    assert_eq!(Operator::parse("-contains"), None);
}

#[test]
fn property_names_ignore_case_and_cover_all() {
    for p in Property::ALL {
        assert_eq!(Property::parse(p.name()), Some(p));
        assert_eq!(Property::parse(&p.name().to_lowercase()), Some(p));
        assert_eq!(Property::parse(&p.name().to_uppercase()), Some(p));
        let f = parse(&format!("{} -eq 'x'", p.name().to_lowercase()))
            .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        assert_eq!(f, cmp(p, Operator::Eq, text("x")));
    }
    assert_eq!(Property::parse("CustomAttribute0"), None);
    assert_eq!(Property::parse("CustomAttribute16"), None);
    assert_eq!(
        Property::parse("customattribute15"),
        Some(Property::CustomAttribute(15))
    );
    assert_eq!(
        Property::custom_attribute(7),
        Some(Property::CustomAttribute(7))
    );
    assert_eq!(Property::custom_attribute(0), None);
    assert_eq!(Property::CustomAttribute(16).name(), "CustomAttribute");
    assert!(Filter::compare(Property::CustomAttribute(16), Operator::Eq, text("x")).is_err());
}

#[test]
fn not_binds_tighter_than_and_tighter_than_or() {
    let (a, b, c) = (dept("a"), dept("b"), dept("c"));
    assert_eq!(
        parse("Department -eq 'a' -or Department -eq 'b' -and Department -eq 'c'").unwrap(),
        Filter::or(a.clone(), Filter::and(b.clone(), c.clone()))
    );
    assert_eq!(
        parse("Department -eq 'a' -and Department -eq 'b' -or Department -eq 'c'").unwrap(),
        Filter::or(Filter::and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse("-not Department -eq 'a' -and Department -eq 'b'").unwrap(),
        Filter::and(Filter::negate(a.clone()), b.clone())
    );
    assert_eq!(
        parse("-not Department -eq 'a' -or Department -eq 'b'").unwrap(),
        Filter::or(Filter::negate(a.clone()), b.clone())
    );
}

#[test]
fn chains_associate_left() {
    let (a, b, c) = (dept("a"), dept("b"), dept("c"));
    assert_eq!(
        parse("Department -eq 'a' -and Department -eq 'b' -and Department -eq 'c'").unwrap(),
        Filter::and(Filter::and(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse("Department -eq 'a' -or Department -eq 'b' -or Department -eq 'c'").unwrap(),
        Filter::or(Filter::or(a, b), c)
    );
}

#[test]
fn parentheses_group() {
    let (a, b, c) = (dept("a"), dept("b"), dept("c"));
    assert_eq!(
        parse("(Department -eq 'a' -or Department -eq 'b') -and Department -eq 'c'").unwrap(),
        Filter::and(Filter::or(a.clone(), b.clone()), c.clone())
    );
    assert_eq!(
        parse("Department -eq 'a' -and (Department -eq 'b' -and Department -eq 'c')").unwrap(),
        Filter::and(a.clone(), Filter::and(b.clone(), c.clone()))
    );
    assert_eq!(
        parse("-not(Department -eq 'a' -or Department -eq 'b')").unwrap(),
        Filter::negate(Filter::or(a.clone(), b))
    );
    assert_eq!(parse("(((Department -eq 'a')))").unwrap(), a.clone());
    assert_eq!(
        parse("-not -not Department -eq 'a'").unwrap(),
        Filter::negate(Filter::negate(a))
    );
}

#[test]
fn whitespace_is_flexible() {
    let expected = Filter::and(dept("Sales"), dept("b"));
    for input in [
        "Department -eq 'Sales' -and Department -eq 'b'",
        "Department-eq'Sales'-and Department-eq'b'",
        "  (  Department   -eq\t'Sales'\n)\r\n-and(Department -eq \"b\")  ",
        "\u{3000}Department\u{a0}-eq 'Sales' -and Department -eq b",
    ] {
        assert_eq!(parse(input).expect(input), expected, "{input:?}");
    }
}

#[test]
fn quoting_and_escaping() {
    let value = |input: &str| match parse(&format!("Department -eq {input}")).expect(input) {
        Filter::Comparison(c) => c.value().clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(value("'O''Brien'"), text("O'Brien"));
    assert_eq!(value("\"O\"\"Brien\""), text("O\"Brien"));
    assert_eq!(value("\"O'Brien\""), text("O'Brien"));
    assert_eq!(value("'say \"hi\"'"), text("say \"hi\""));
    assert_eq!(value("''''"), text("'"));
    assert_eq!(value("''"), text(""));
    assert_eq!(value("'Zürich -and (x)'"), text("Zürich -and (x)"));
    assert_eq!(value("'  spaced  '"), text("  spaced  "));
    // Unquoted integers and system values, as Exchange takes them.
    assert_eq!(value("UserMailbox"), text("UserMailbox"));
    assert_eq!(value("42"), text("42"));
    assert_eq!(value("-5"), text("-5"));
    assert_eq!(value("a.b@example.com"), text("a.b@example.com"));
}

#[test]
fn null_true_false() {
    let value = |input: &str| match parse(&format!("Department -ne {input}")).expect(input) {
        Filter::Comparison(c) => c.value().clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(value("$null"), Value::Null);
    assert_eq!(value("$NULL"), Value::Null);
    assert_eq!(value("$true"), Value::Bool(true));
    assert_eq!(value("$False"), Value::Bool(false));
    // Quoted, they are just text.
    assert_eq!(value("'$null'"), text("$null"));
}

#[test]
fn error_expected_property() {
    assert_err("", 0, FilterErrorKind::ExpectedProperty);
    assert_err("   ", 3, FilterErrorKind::ExpectedProperty);
    assert_err("-not", 4, FilterErrorKind::ExpectedProperty);
    assert_err(
        "Department -eq 'x' -and",
        23,
        FilterErrorKind::ExpectedProperty,
    );
    assert_err(
        "Department -eq 'x' -or ()",
        24,
        FilterErrorKind::ExpectedProperty,
    );
    let e = assert_err(
        "'Sales' -eq Department",
        0,
        FilterErrorKind::ExpectedProperty,
    );
    assert_eq!(e.expected, "a property name, '(' or -not");
}

#[test]
fn error_unknown_property() {
    let e = assert_err("Foo -eq 'x'", 0, FilterErrorKind::UnknownProperty);
    assert!(e.message.contains("unknown property 'Foo'"), "{e}");
    assert!(e.message.contains("Department"), "{e}");
    assert!(
        e.message.contains("CustomAttribute1 to CustomAttribute15"),
        "{e}"
    );
    assert_err(
        "Department -eq 'x' -and Bogus -eq 'y'",
        24,
        FilterErrorKind::UnknownProperty,
    );
    assert_err(
        "CustomAttribute16 -eq 'x'",
        0,
        FilterErrorKind::UnknownProperty,
    );
}

#[test]
fn error_expected_operator() {
    let e = assert_err("Department 'x'", 11, FilterErrorKind::ExpectedOperator);
    assert_eq!(e.expected, "an operator such as -eq");
    assert_eq!(
        e.to_string(),
        "at position 11: expected an operator such as -eq, -like or -ne after Department, \
         found ''x''"
    );
    let e = assert_err("Department", 10, FilterErrorKind::ExpectedOperator);
    assert!(e.message.ends_with("found the end of the filter"), "{e}");
    assert_err("Department -and 'x'", 11, FilterErrorKind::ExpectedOperator);
    assert_err("Department - 'x'", 11, FilterErrorKind::ExpectedOperator);
}

#[test]
fn error_unknown_operator() {
    let e = assert_err(
        "Department -contains 'x'",
        11,
        FilterErrorKind::UnknownOperator,
    );
    assert!(e.message.contains("'-contains'"), "{e}");
    assert_err("Department -eqq 'x'", 11, FilterErrorKind::UnknownOperator);
}

#[test]
fn error_expected_value() {
    let e = assert_err("Department -eq", 14, FilterErrorKind::ExpectedValue);
    assert_eq!(e.expected, "a quoted value");
    assert_err("Department -eq )", 15, FilterErrorKind::ExpectedValue);
    assert_err("Department -eq -and", 15, FilterErrorKind::ExpectedValue);
    assert_err("Department -eq (x)", 15, FilterErrorKind::ExpectedValue);
}

#[test]
fn error_unterminated_value() {
    let e = assert_err(
        "Department -eq 'Sales",
        15,
        FilterErrorKind::UnterminatedValue,
    );
    assert_eq!(e.expected, "a closing '");
    assert_err(
        "Department -eq \"Sales''",
        15,
        FilterErrorKind::UnterminatedValue,
    );
    assert_err(
        "Department -eq 'O''",
        15,
        FilterErrorKind::UnterminatedValue,
    );
}

#[test]
fn error_unknown_variable() {
    let e = assert_err("Department -eq $nul", 15, FilterErrorKind::UnknownVariable);
    assert!(e.message.contains("'$nul'"), "{e}");
    assert_err("Department -eq $", 15, FilterErrorKind::UnknownVariable);
}

#[test]
fn error_value_not_allowed() {
    assert_err(
        "Department -like $null",
        17,
        FilterErrorKind::ValueNotAllowed,
    );
    assert_err(
        "Department -notlike $true",
        20,
        FilterErrorKind::ValueNotAllowed,
    );
    assert_err(
        "CustomAttribute1 -lt $false",
        21,
        FilterErrorKind::ValueNotAllowed,
    );
    assert_err(
        "CustomAttribute1 -ge $null",
        21,
        FilterErrorKind::ValueNotAllowed,
    );
}

#[test]
fn error_invalid_wildcard() {
    let e = assert_err(
        "Office -like 'To*kyo'",
        13,
        FilterErrorKind::InvalidWildcard,
    );
    assert!(e.message.contains("first or last character"), "{e}");
    assert_err("Office -like '***'", 13, FilterErrorKind::InvalidWildcard);
    assert_err(
        "Office -notlike '*a*b'",
        16,
        FilterErrorKind::InvalidWildcard,
    );
    // Allowed forms.
    for ok in ["'*'", "'**'", "'To*'", "'*yo'", "'*ok*'", "'Tokyo'", "''"] {
        parse(&format!("Office -like {ok}")).expect(ok);
    }
    // -eq compares a '*' literally, wherever it is.
    parse("Office -eq 'To*kyo'").expect("-eq with a star");
}

#[test]
fn error_expected_close_paren() {
    let e = assert_err(
        "(Department -eq 'x'",
        19,
        FilterErrorKind::ExpectedCloseParen,
    );
    assert_eq!(e.expected, "')'");
    assert!(e.message.contains("position 0"), "{e}");
    assert_err(
        "((Department -eq 'x') Office -eq 'y')",
        22,
        FilterErrorKind::ExpectedCloseParen,
    );
}

#[test]
fn error_unexpected_text() {
    let e = assert_err("Department -eq 'x')", 18, FilterErrorKind::UnexpectedText);
    assert!(e.message.starts_with("unmatched ')'"), "{e}");
    let e = assert_err(
        "Department -eq 'x' Office -eq 'y'",
        19,
        FilterErrorKind::UnexpectedText,
    );
    assert_eq!(e.expected, "-and, -or or the end of the filter");
    assert!(
        e.message
            .starts_with("unexpected text after the end of the filter")
    );
    assert_err(
        "Department -eq 'x' -eq 'y'",
        19,
        FilterErrorKind::UnexpectedText,
    );
    assert_err(
        "Department -eq 'x' -andy",
        19,
        FilterErrorKind::UnexpectedText,
    );
    assert_err("Department -eq 'x'y", 18, FilterErrorKind::UnexpectedText);
}

#[test]
fn positions_count_characters_not_bytes() {
    // "Zürich" has 6 characters and 7 bytes.
    let e = assert_err(
        "Department -eq 'Zürich' Office",
        24,
        FilterErrorKind::UnexpectedText,
    );
    assert_eq!(e.position, 24);
    assert_err(
        "Department -eq '日本' Foo",
        20,
        FilterErrorKind::UnexpectedText,
    );
}

#[test]
fn length_limit_is_2048_characters() {
    assert_eq!(MAX_FILTER_LENGTH, 2048);
    let prefix = "Department -eq '";
    let exact = |fill: char| {
        let n = MAX_FILTER_LENGTH - prefix.chars().count() - 1;
        format!("{prefix}{}'", fill.to_string().repeat(n))
    };
    // 2,048 characters (4,000+ bytes for 'é') are accepted.
    for fill in ['a', 'é'] {
        let at_limit = exact(fill);
        assert_eq!(at_limit.chars().count(), 2048);
        parse(&at_limit).expect("2048 characters are allowed");
    }
    let over = format!("{} ", exact('a'));
    let e = assert_err(&over, 2048, FilterErrorKind::TooLong);
    assert_eq!(e.expected, "at most 2048 characters");
    // Refused before anything else is looked at.
    assert_err(&"(".repeat(5000), 2048, FilterErrorKind::TooLong);
}

#[test]
fn canonical_text() {
    let f = parse("Department -eq 'Sales' -and Office -like 'Tokyo*'").unwrap();
    assert_eq!(
        f.to_opath(),
        "((Department -eq 'Sales') -and (Office -like 'Tokyo*'))"
    );
    assert_eq!(f.to_string(), f.to_opath());
    let f = parse("-not department -EQ $NULL -or lastname -eq \"O'Brien\"").unwrap();
    assert_eq!(
        f.to_opath(),
        "((-not (Department -eq $null)) -or (LastName -eq 'O''Brien'))"
    );
    let f = parse("HiddenFromAddressListsEnabled -ne $TRUE -and CustomAttribute1 -gt 5").unwrap();
    assert_eq!(
        f.to_opath(),
        "((HiddenFromAddressListsEnabled -ne $true) -and (CustomAttribute1 -gt '5'))"
    );
}

#[test]
fn round_trip_examples() {
    for input in [
        "Department -eq 'Sales'",
        "(RecipientTypeDetails -eq 'UserMailbox') -and (CustomAttribute10 -eq 'FullTimeEmployee')",
        "((RecipientTypeDetails -eq 'UserMailbox') -and (Company -eq 'Contoso') -and (Office -eq 'North Building'))",
        "-not (Title -like '*intern*') -or Department -ne $null",
        "City -eq 'O''Brien' -and Notes -eq \"say \"\"hi\"\"\"",
        "Alias -lt 'm' -or Alias -ge 'x' -and -not -not Alias -le 5.5",
        "Office -like '*' -and Office -notlike '**' -and Office -like ''",
        "Department -eq '' -or Department -eq ' ' -or Department -eq '(x) -and y'",
    ] {
        let f = parse(input).expect(input);
        let text = f.to_opath();
        assert_eq!(parse(&text).as_ref(), Ok(&f), "{input:?} -> {text:?}");
        assert_eq!(parse(&text).unwrap().to_opath(), text);
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    // The deepest the 2,048-character limit allows.
    let depth = (MAX_FILTER_LENGTH - "City -eq 1".len()) / 2;
    let nested = format!("{}City -eq 1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(nested.len(), MAX_FILTER_LENGTH);
    // Run on a thread with a small stack, as a server worker might have.
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let f = parse(&nested).expect("nested parses");
            // 407 nested -nots: the deepest tree the limit allows.
            let nots = "-not ".repeat((MAX_FILTER_LENGTH - 10) / 5) + "City -eq 1";
            let g = parse(&nots).expect("nots parse");
            let subject = std::collections::HashMap::from([(Property::City, "1".to_owned())]);
            // 407 is odd: the filter is a negation.
            let verdict = g.matches(&subject);
            // The canonical text adds parentheses, so it is over the limit.
            let canonical_too_long = parse(&g.to_opath()).map_err(|e| e.kind);
            (f, verdict, canonical_too_long)
        })
        .expect("spawn");
    let (f, verdict, canonical) = handle.join().expect("no stack overflow");
    assert_eq!(f, cmp(Property::City, Operator::Eq, text("1")));
    assert!(!verdict);
    assert_eq!(canonical, Err(FilterErrorKind::TooLong));
}

#[test]
fn canonical_text_can_exceed_the_limit() {
    // The limit applies to the text parsed; Exchange counts its own
    // normalised form ("including internal syntax"), which to_opath also
    // writes, so a filter near the limit can have a canonical form over it.
    let input = vec!["City -eq 1"; 130].join(" -or ");
    assert!(input.chars().count() <= MAX_FILTER_LENGTH);
    let f = parse(&input).expect("within the limit");
    let canonical = f.to_opath();
    assert!(canonical.chars().count() > MAX_FILTER_LENGTH);
    assert_eq!(
        parse(&canonical).map_err(|e| e.kind),
        Err(FilterErrorKind::TooLong)
    );
    // Below that, the round trip holds.
    let f = parse(&vec!["City -eq 1"; 60].join(" -or ")).expect("parses");
    assert_eq!(parse(&f.to_opath()), Ok(f));
}

#[test]
fn filters_serialize_as_text() {
    let f = parse("Department -eq 'Sales' -and Office -like 'Tokyo*'").unwrap();
    let json = serde_json::to_string(&f).unwrap();
    assert_eq!(
        json,
        "\"((Department -eq 'Sales') -and (Office -like 'Tokyo*'))\""
    );
    let back: Filter = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
    let bad = serde_json::from_str::<Filter>("\"Department -eq\"").unwrap_err();
    assert!(bad.to_string().contains("at position 14"), "{bad}");
    let p: Property = serde_json::from_str("\"customattribute3\"").unwrap();
    assert_eq!(p, Property::CustomAttribute(3));
    assert_eq!(serde_json::to_string(&p).unwrap(), "\"CustomAttribute3\"");
    let f2: Filter = "City -eq 'Paris'".parse().unwrap();
    assert_eq!(f2, cmp(Property::City, Operator::Eq, text("Paris")));
}
