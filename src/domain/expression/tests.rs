use super::*;
use proptest::prelude::*;

fn text(s: &str) -> Operand {
    Operand::Literal(Literal::Text(s.into()))
}

fn err(query: &str) -> String {
    match parse(query) {
        Ok(p) => panic!("`{query}` was accepted as {p:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn parses_what_clients_send() {
    assert_eq!(
        parse("subscribers.email='A@b.c'").unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::Email),
            op: CompareOp::Eq,
            right: text("a@b.c"),
        }
    );
    let uuid = "0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79";
    assert_eq!(
        parse(&format!("subscribers.uuid='{uuid}'")).unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::Uuid),
            op: CompareOp::Eq,
            right: Operand::Literal(Literal::Uuid(uuid.parse().unwrap())),
        }
    );
    assert_eq!(
        parse("subscribers.attribs->>'city' = 'Bengaluru' AND subscribers.name LIKE 'Test%'")
            .unwrap(),
        Predicate::And(vec![
            Predicate::Compare {
                left: Operand::Attrib {
                    path: vec!["city".into()],
                    view: AttribView::Text
                },
                op: CompareOp::Eq,
                right: text("Bengaluru"),
            },
            Predicate::Like {
                operand: Operand::Field(Field::Name),
                pattern: vec![LikePart::Text("Test".into()), LikePart::AnyString],
                negated: false,
                case_insensitive: false,
            },
        ])
    );
    assert_eq!(
        parse("LOWER(subscribers.email) IN ('x@y.z','A@b.c')").unwrap(),
        Predicate::In {
            operand: Operand::Lower(Box::new(Operand::Field(Field::Email))),
            values: vec![Literal::Text("x@y.z".into()), Literal::Text("A@b.c".into())],
            negated: false,
        }
    );
    assert_eq!(
        parse("subscribers.attribs->'stack'->>'lang' NOT ILIKE '%go\\_%'").unwrap(),
        Predicate::Like {
            operand: Operand::Attrib {
                path: vec!["stack".into(), "lang".into()],
                view: AttribView::Text
            },
            pattern: vec![
                LikePart::AnyString,
                LikePart::Text("go_".into()),
                LikePart::AnyString
            ],
            negated: true,
            case_insensitive: true,
        }
    );
    assert_eq!(
        parse("NOT (subscribers.name IS NULL)").unwrap(),
        Predicate::Not(Box::new(Predicate::IsNull {
            operand: Operand::Field(Field::Name),
            negated: false
        }))
    );
    assert_eq!(
        parse("subscribers.id > 5 OR subscribers.status <> 'blocklisted'").unwrap(),
        Predicate::Or(vec![
            Predicate::Compare {
                left: Operand::Field(Field::Id),
                op: CompareOp::Gt,
                right: Operand::Literal(Literal::Integer(5)),
            },
            Predicate::Compare {
                left: Operand::Field(Field::Status),
                op: CompareOp::NotEq,
                right: text("blocklisted"),
            },
        ])
    );
    assert_eq!(
        parse("subscribers.created_at > '2024-01-01'").unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::CreatedAt),
            op: CompareOp::Gt,
            right: Operand::Literal(Literal::Timestamp("2024-01-01T00:00:00Z".parse().unwrap())),
        }
    );
    assert_eq!(
        parse("attribs->>'age' > 30").unwrap(),
        Predicate::Compare {
            left: Operand::Attrib {
                path: vec!["age".into()],
                view: AttribView::Number
            },
            op: CompareOp::Gt,
            right: Operand::Literal(Literal::Integer(30)),
        }
    );
}

#[test]
fn normalises_sides_chains_and_literals() {
    // A literal on the left is moved right, with the operator flipped.
    assert_eq!(parse("5 < id").unwrap(), parse("id > 5").unwrap(),);
    // Parenthesised chains of the same operator are flattened.
    assert_eq!(
        parse("id = 1 AND (id = 2 AND id = 3)").unwrap(),
        parse("id = 1 AND id = 2 AND id = 3").unwrap(),
    );
    assert_eq!(parse("1 = 1").unwrap(), Predicate::Literal(true));
    assert_eq!(parse("'a' > 'b'").unwrap(), Predicate::Literal(false));
    assert_eq!(parse("TRUE").unwrap(), Predicate::Literal(true));
    assert_eq!(parse("2 IN (1, 2.0)").unwrap(), Predicate::Literal(true));
    assert_eq!(
        parse("\"subscribers\".\"ID\" = 1").map_err(|e| e.0),
        Err("`query`: column `ID` is not supported; use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'".into()),
    );
    assert_eq!(
        parse("SUBSCRIBERS.ID = '7'").unwrap(),
        parse("id = 7").unwrap()
    );
    assert_eq!(
        parse("id >= -3").unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::Id),
            op: CompareOp::GtEq,
            right: Operand::Literal(Literal::Integer(-3)),
        }
    );
    // `->` takes its string as JSON; `->>` as text.
    for (query, view, literal) in [
        (
            "attribs->'n' = '30'",
            AttribView::Number,
            Literal::Integer(30),
        ),
        (
            "attribs->'n' = '\"30\"'",
            AttribView::String,
            Literal::Text("30".into()),
        ),
        (
            "attribs->'n' = 'true'",
            AttribView::Boolean,
            Literal::Boolean(true),
        ),
        (
            "attribs->'n' = 1.5",
            AttribView::Number,
            Literal::Float(1.5),
        ),
        (
            "attribs->>'n' = '30'",
            AttribView::Text,
            Literal::Text("30".into()),
        ),
        (
            "attribs->>'n' <> false",
            AttribView::Boolean,
            Literal::Boolean(false),
        ),
    ] {
        let Predicate::Compare { left, right, .. } = parse(query).unwrap() else {
            panic!("{query}");
        };
        assert_eq!(
            left,
            Operand::Attrib {
                path: vec!["n".into()],
                view
            },
            "{query}"
        );
        assert_eq!(right, Operand::Literal(literal), "{query}");
    }
    assert_eq!(
        parse("attribs->'n' IS NOT NULL").unwrap(),
        Predicate::IsNull {
            operand: Operand::Attrib {
                path: vec!["n".into()],
                view: AttribView::Json
            },
            negated: true
        }
    );
    assert_eq!(
        parse("created_at < updated_at").unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::CreatedAt),
            op: CompareOp::Lt,
            right: Operand::Field(Field::UpdatedAt),
        }
    );
    assert_eq!(
        parse("created_at = '2024-05-06T07:08:09.123456789+02:00'").unwrap(),
        Predicate::Compare {
            left: Operand::Field(Field::CreatedAt),
            op: CompareOp::Eq,
            right: Operand::Literal(Literal::Timestamp(
                "2024-05-06T05:08:09.123456Z".parse().unwrap()
            )),
        }
    );
    assert!(parse("updated_at <= '2024-05-06 07:08:09'").is_ok());
    assert!(parse("status IN ('enabled', 'disabled')").is_ok());
    assert!(parse("status > 'b'").is_ok(), "any string orders");
    assert!(parse("email LIKE '%\\\\%'").is_ok());
}

/// The number `query` compares `attribs->>'n'` with.
fn compared_number(query: &str) -> Literal {
    match parse(query) {
        Ok(Predicate::Compare {
            right: Operand::Literal(literal),
            ..
        }) => literal,
        other => panic!("{query}: {other:?}"),
    }
}

#[test]
fn numbers_are_exact_or_refused() {
    for (written, literal) in [
        ("9007199254740992", Literal::Integer(NUMBER_MAX_EXACT)),
        ("-9007199254740992", Literal::Integer(-NUMBER_MAX_EXACT)),
        (
            "9007199254740992.0",
            Literal::Float(9_007_199_254_740_992.0),
        ),
        (
            "9.007199254740992e15",
            Literal::Float(9_007_199_254_740_992.0),
        ),
        ("0.1", Literal::Float(0.1)),
        ("0.10", Literal::Float(0.1)),
        ("00.100e0", Literal::Float(0.1)),
        (".5", Literal::Float(0.5)),
        ("5.", Literal::Float(5.0)),
        ("1.5e3", Literal::Float(1500.0)),
        ("15E-1", Literal::Float(1.5)),
        ("0.30000000000000004", Literal::Float(0.1 + 0.2)),
        ("5e-324", Literal::Float(5e-324)),
        (
            "2.2250738585072014e-308",
            Literal::Float(2.225_073_858_507_201_4e-308),
        ),
        ("-0", Literal::Integer(0)),
        ("0e999999999999999999999", Literal::Float(0.0)),
    ] {
        for query in [
            format!("attribs->>'n' = {written}"),
            format!("attribs->'n' = '{written}'"),
        ] {
            if query.contains("'.5'") || query.contains("'5.'") || query.contains("'00.") {
                continue; // Not JSON.
            }
            assert_eq!(compared_number(&query), literal, "{query}");
        }
    }
    // `-0.0` is 0, never a negative zero.
    for query in [
        "attribs->>'n' = -0.0",
        "attribs->'n' = '-0.0'",
        "attribs->>'n' = -0e3",
    ] {
        let Literal::Float(zero) = compared_number(query) else {
            panic!("{query}")
        };
        assert!(zero == 0.0 && zero.is_sign_positive(), "{query}");
    }
    for (written, says) in [
        (
            "9007199254740993",
            "at most 9007199254740992 (2^53) in magnitude",
        ),
        (
            "-9007199254740993",
            "at most 9007199254740992 (2^53) in magnitude",
        ),
        (
            "18446744073709551615",
            "at most 9007199254740992 (2^53) in magnitude",
        ),
        ("1e16", "at most 9007199254740992 (2^53) in magnitude"),
        (
            "9007199254740993.5",
            "at most 9007199254740992 (2^53) in magnitude",
        ),
        ("1e308", "at most 9007199254740992 (2^53) in magnitude"),
        (
            "0.30000000000000001",
            "not the shortest decimal of a 64-bit float; write 0.3",
        ),
        ("0.1000000000000000055511151231257827", "; write 0.1"),
        ("4503599627370496.5", "; write 4503599627370496.0"),
        ("9007199254740992.5", "; write 9007199254740992.0"),
        // Two decimals of 17 digits read as this float; serde_json writes the nearer, ….2.
        ("-1971866499975272.3", "; write -1971866499975272.2"),
        ("1e-400", "; write 0.0"),
        ("2e-324", "; write 0.0"),
    ] {
        for query in [
            format!("attribs->>'n' = {written}"),
            format!("attribs->'n' IN ('{written}')"),
            format!("{written} > 1"),
            format!("attribs->>'n' IN (1, {written})"),
        ] {
            let message = err(&query);
            assert!(
                message.starts_with(&format!(
                    "`query`: the number {written} cannot be compared exactly: "
                )) && message.contains(says),
                "{query}: {message}"
            );
        }
    }
    // `id` is a bigint column, compared exactly on both backends: every `i64` is fine.
    assert!(parse("id = 9223372036854775807").is_ok());
    assert!(parse("id = -9007199254740993").is_ok());
    // Literals compared with each other are exact too.
    assert_eq!(parse("0.3 = 0.30").unwrap(), Predicate::Literal(true));
    assert_eq!(parse("-0.0 = 0").unwrap(), Predicate::Literal(true));
    assert_eq!(
        parse("9007199254740992 > 9007199254740991.0").unwrap(),
        Predicate::Literal(true)
    );
}

#[test]
fn decimals_are_read_exactly() {
    assert_eq!(decimal("-12.5e3"), Some((true, "125".into(), 5)));
    assert_eq!(decimal("0.00125"), Some((false, "125".into(), -2)));
    assert_eq!(decimal("1.25e-2"), decimal("0.0125"));
    assert_eq!(decimal("-0.0"), Some((false, String::new(), 0)));
    assert_eq!(decimal("100"), decimal("1e2"));
    assert_ne!(decimal("100"), decimal("1e3"));
    for bad in [
        "",
        ".",
        "e5",
        "1e",
        "1.2.3",
        "0x10",
        "1_000",
        "inf",
        "1e99999999999999999999",
    ] {
        assert_eq!(decimal(bad), None, "{bad}");
    }
}

proptest! {
    #[test]
    fn every_float_within_the_bound_is_accepted_as_serde_json_writes_it(
        n in -9.007_199_254_740_992e15f64..9.007_199_254_740_992e15,
    ) {
        let query = format!("attribs->>'n' < {}", float_text(n));
        let literal = compared_number(&query);
        prop_assert!(
            literal == Literal::Float(n) || literal == Literal::Integer(n as i64),
            "{}: {:?}", query, literal
        );
        // Written otherwise (Rust's own shortest decimal may be the other of two as short), it is the same
        // decimal or refused with the one to write.
        let other = format!("attribs->>'n' < {n:e}");
        match parse(&other) {
            Ok(_) => prop_assert_eq!(decimal(&format!("{n:e}")), decimal(&float_text(n))),
            Err(e) => prop_assert!(e.0.ends_with(&format!("write {}", float_text(n))), "{}", e.0),
        }
    }
}

#[test]
fn like_patterns_follow_postgres_escapes() {
    assert_eq!(
        like_pattern("a\\%b%%_\\\\").unwrap(),
        vec![
            LikePart::Text("a%b".into()),
            LikePart::AnyString,
            LikePart::AnyChar,
            LikePart::Text("\\".into()),
        ]
    );
    assert!(err("name LIKE 'abc\\'").contains("escape character"));
    // Patterns on `email` are lowercased, as addresses are stored.
    let Predicate::Like { pattern, .. } = parse("email LIKE 'A%'").unwrap() else {
        panic!()
    };
    assert_eq!(
        pattern,
        vec![LikePart::Text("a".into()), LikePart::AnyString]
    );
}

#[test]
fn names_what_is_not_supported() {
    for (query, message) in [
        (
            "id IN (SELECT id FROM users)",
            "`query`: sub-queries are not supported",
        ),
        (
            "EXISTS (SELECT 1)",
            "`query`: sub-queries are not supported",
        ),
        (
            "email = (SELECT email FROM users LIMIT 1)",
            "`query`: sub-queries are not supported",
        ),
        (
            "password = 'x'",
            "`query`: column `password` is not supported; use subscribers.id, uuid, email, name, status, created_at, updated_at or attribs->>'key'",
        ),
        (
            "lists.name = 'x'",
            "`query`: table `lists` is not supported; only subscribers' columns are",
        ),
        (
            "id = 1; DROP TABLE lists",
            "`query`: `;` is not supported: give one expression",
        ),
        ("id = 1 -- x", "`query`: comments are not supported"),
        ("id = 1 /* x */", "`query`: comments are not supported"),
        ("id::text = '1'", "`query`: casts are not supported"),
        ("CAST(id AS text) = '1'", "`query`: casts are not supported"),
        ("id = $1", "`query`: placeholders are not supported"),
        (
            "pg_sleep(10) IS NULL",
            "`query`: function `pg_sleep` is not supported; only LOWER(column) is",
        ),
        (
            "upper(name) = 'X'",
            "`query`: function `upper` is not supported; only LOWER(column) is",
        ),
        (
            "name LIKE 'a!%' ESCAPE '!'",
            "`query`: LIKE … ESCAPE is not supported; `\\` escapes `%`, `_` and itself",
        ),
        (
            "id BETWEEN 1 AND 2",
            "`query`: BETWEEN is not supported; use >= and <=",
        ),
        (
            "name || 'x' = 'y'",
            "`query`: operator `||` is not supported",
        ),
        ("name ~ 'x'", "`query`: operator `~` is not supported"),
        (
            "email = NULL",
            "`query`: NULL cannot be compared; use IS NULL or IS NOT NULL",
        ),
        (
            "status = 'blacklisted'",
            "`query`: unknown status 'blacklisted'; use enabled, disabled or blocklisted",
        ),
        (
            "uuid = 'nope'",
            "`query`: `uuid` compares with a UUID such as '5e2b3c0a-…', not 'nope'",
        ),
        (
            "created_at > 'yesterday'",
            "`query`: `created_at` compares with a date ('2024-01-01') or an RFC 3339 timestamp ('2024-01-01T10:00:00Z'), not 'yesterday'",
        ),
        ("id = 1.5", "`query`: `id` is a whole number, not 1.5"),
        (
            "name = 5",
            "`query`: cannot compare `name` with the number 5",
        ),
        ("id = email", "`query`: cannot compare `id` with `email`"),
        (
            "email",
            "`query`: `email` is not a condition; compare it with a value",
        ),
        (
            "attribs = '{}'",
            "`query`: `attribs` needs a key: attribs->>'key' (text) or attribs->'key' (JSON)",
        ),
        (
            "attribs->>'a'->>'b' = 'x'",
            "`query`: `->>` yields text, which has no keys: only the last step may be `->>`",
        ),
        (
            "attribs->'a' LIKE 'x'",
            "`query`: `attribs->'a'` yields JSON; use ->> for its text",
        ),
        (
            "attribs->'a' = 'x'",
            "`query`: `->` yields JSON, so 'x' must be JSON (such as '\"text\"'); use ->> to compare text",
        ),
        (
            "attribs->1 = 'x'",
            "`query`: attribs keys must be '…' strings",
        ),
        (
            "name->>'a' = 'x'",
            "`query`: `->` and `->>` apply to subscribers.attribs only, not `name`",
        ),
        (
            "id LIKE '1%'",
            "`query`: LIKE applies to text (email, name, status, LOWER(…) or attribs->>'key'), not `id`",
        ),
        (
            "LOWER(id) = '1'",
            "`query`: LOWER applies to text (email, name, status or attribs->>'key'), not `id`",
        ),
        (
            "LOWER(name, email) = 'x'",
            "`query`: LOWER takes exactly one column",
        ),
        ("id IN (1, 'a')", "`query`: `id` is a whole number, not 'a'"),
        (
            "attribs->>'a' IN (1, 'a')",
            "`query`: the values in IN (…) must all be of one type (strings, numbers or booleans)",
        ),
        (
            "id IN (email)",
            "`query`: IN (…) takes literal values, not `email`",
        ),
        (
            "name = E'x'",
            "`query`: the literal `E'x'` is not supported; use '…' strings, numbers, TRUE or FALSE",
        ),
        (
            "id = 1 id = 2",
            "`query`: unexpected `id` after the expression",
        ),
        ("", "`query`: is empty"),
        (
            "CASE WHEN id = 1 THEN TRUE END",
            "`query`: CASE is not supported",
        ),
        (
            "name IS TRUE",
            "`query`: IS TRUE, IS FALSE and IS UNKNOWN are not supported",
        ),
        (
            "created_at > DATE '2024-01-01'",
            "`query`: typed literals (such as DATE '…') are not supported; use a plain '…' string",
        ),
        (
            "id = ANY(ARRAY[1])",
            "`query`: ANY and ALL are not supported; use IN (…)",
        ),
        (
            "name = 'a' COLLATE \"C\"",
            "`query`: COLLATE is not supported",
        ),
    ] {
        assert_eq!(err(query), message, "{query}");
    }
    assert!(err("id = ").starts_with("`query`: not a valid expression: "));
    assert!(err("name = 'unterminated").starts_with("`query`: not a valid expression: "));
}

#[test]
fn bounds_are_checked_before_parsing() {
    let long = format!("name = '{}'", "x".repeat(EXPRESSION_MAX_CHARS));
    assert_eq!(
        err(&long),
        format!("`query`: must be at most {EXPRESSION_MAX_CHARS} characters")
    );
    // A flat chain of 200,000 terms: refused by its length, never parsed.
    let chain = vec!["id = 1"; 200_000].join(" AND ");
    assert!(err(&chain).contains("at most"));
    // `id IN (1,…,1)` with n values is 2n + 3 tokens.
    let list = |n: usize| format!("id IN ({})", vec!["1"; n].join(","));
    let over = list((EXPRESSION_MAX_TOKENS - 2) / 2);
    assert!(over.len() <= EXPRESSION_MAX_CHARS);
    assert_eq!(
        err(&over),
        format!(
            "`query`: must have at most {EXPRESSION_MAX_TOKENS} tokens (words, values and operators)"
        )
    );
    assert!(parse(&list((EXPRESSION_MAX_TOKENS - 3) / 2)).is_ok());
    let deep = format!(
        "{}id = 1{}",
        "(".repeat(EXPRESSION_MAX_DEPTH + 1),
        ")".repeat(EXPRESSION_MAX_DEPTH + 1)
    );
    assert_eq!(err(&deep), too_deep().0);
    let fits = format!(
        "{}id = 1{}",
        "(".repeat(EXPRESSION_MAX_DEPTH),
        ")".repeat(EXPRESSION_MAX_DEPTH)
    );
    assert!(parse(&fits).is_ok());
    let nots = format!("{}id = 1", "NOT ".repeat(EXPRESSION_MAX_DEPTH + 1));
    assert_eq!(err(&nots), too_deep().0);
    let many_nots = format!("{}id = 1", "NOT ".repeat(400));
    assert!(err(&many_nots).starts_with("`query`: "));
    let path = format!("attribs{} = 'x'", "->'k'".repeat(ATTRIB_PATH_MAX_KEYS + 1));
    assert!(err(&path).contains("at most 8 keys"));
    let key = format!("attribs->>'{}' = 'x'", "k".repeat(ATTRIB_KEY_MAX_CHARS + 1));
    assert!(err(&key).contains("attribs keys"));
    assert!(err("attribs->>'a\"b' = 'x'").contains("attribs keys"));
    assert!(
        parse(&format!(
            "attribs->>'{}' = 'x'",
            "é".repeat(ATTRIB_KEY_MAX_CHARS)
        ))
        .is_ok()
    );
}

/// SQL-ish fragments, including injection attempts, for the property tests.
const FRAGMENTS: &[&str] = &[
    "subscribers.",
    "email",
    "name",
    "id",
    "uuid",
    "status",
    "created_at",
    "updated_at",
    "attribs",
    "password",
    "lists.",
    "->",
    "->>",
    "'k'",
    "'stack'",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "LIKE",
    "ILIKE",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "AND",
    "OR",
    "(",
    ")",
    ",",
    "LOWER(",
    "'a@b.c'",
    "'A%'",
    "'%_\\'",
    "5",
    "-3",
    "1.5e3",
    "TRUE",
    "FALSE",
    "'2024-01-01'",
    "'enabled'",
    "'blocklisted'",
    "'0b8c6f7a-5d2e-4c3b-9a1f-2e3d4c5b6a79'",
    "1=1; DROP TABLE lists",
    "' OR '1'='1",
    "--",
    "/*",
    "*/",
    "pg_sleep(10)",
    "SELECT",
    "FROM",
    "UNION",
    "::text",
    "$1",
    "?",
    ";",
    "'",
    "\"",
    "E'\\x'",
    "$$",
    "CAST(",
    "AS",
    "ESCAPE",
    "'\"x\"'",
    "'30'",
    "||",
    "*",
    "attribs->'a'->>'b'",
    "sqlite_master",
    "'; DELETE FROM subscribers; --",
    "\\",
    "COLLATE",
    "json_extract(",
    "É",
    "\u{0}",
];

fn sqlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.join(" "))
}

proptest! {
    #[test]
    fn never_panics_on_any_text(text in ".{0,300}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_sql_fragments(text in sqlish()) {
        if let Err(e) = parse(&text) {
            prop_assert!(e.0.starts_with("`query`: "));
        }
    }

    #[test]
    fn never_panics_on_deep_or_long_input(depth in 0usize..200, terms in 1usize..2_000) {
        let nested = format!("{}id = 1{}", "(".repeat(depth), ")".repeat(depth));
        prop_assert_eq!(parse(&nested).is_ok(), depth <= EXPRESSION_MAX_DEPTH);
        let chain = vec!["id = 1"; terms].join(" AND ");
        let _ = parse(&chain);
    }
}

#[test]
fn survives_a_huge_chain() {
    // 100,000 terms: refused by length before any tokenizing, let alone parsing.
    let chain = vec!["email = 'a@b.c'"; 100_000].join(" OR ");
    assert!(parse(&chain).is_err());
    let unbalanced = "(".repeat(100_000);
    assert!(parse(&unbalanced).is_err());
}
