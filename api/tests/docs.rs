//! The documents stay true to the code: the README's endpoint table lists exactly the operations
//! of the OpenAPI document, and every alert that code or docs name exists in the rules file.
//! Both read files of the repository; neither needs a database.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the api crate")
        .to_path_buf()
}

/// `METHOD /path` of every backticked operation in the first column of the README's endpoint
/// table (a query string is not part of the path).
fn readme_operations(readme: &str) -> BTreeSet<String> {
    let table = readme
        .split("| endpoint | what it does |")
        .nth(1)
        .expect("README has its endpoint table");
    let mut found = BTreeSet::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for span in first.split('`').skip(1).step_by(2) {
            let mut words = span.split_whitespace();
            let (Some(method), Some(path)) = (words.next(), words.next()) else {
                continue;
            };
            if METHODS.contains(&method) {
                let path = path.split('?').next().unwrap_or(path);
                found.insert(format!("{method} {path}"));
            }
        }
    }
    found
}

fn openapi_operations() -> BTreeSet<String> {
    let doc = serde_json::to_value(shop_api::openapi::document()).expect("document as JSON");
    let paths = doc["paths"].as_object().expect("paths");
    let mut found = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                found.insert(format!("{method} {path}"));
            }
        }
    }
    found
}

#[test]
fn readme_lists_the_operations_of_the_openapi_document() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let readme = readme_operations(&readme);
    let openapi = openapi_operations();
    let only_readme: Vec<_> = readme.difference(&openapi).collect();
    let only_openapi: Vec<_> = openapi.difference(&readme).collect();
    assert!(
        only_readme.is_empty() && only_openapi.is_empty(),
        "README's endpoint table and /openapi.json differ:\n  only in README: {only_readme:?}\n  only in OpenAPI: {only_openapi:?}"
    );
}

#[test]
fn the_endpoint_check_sees_a_missing_and_an_extra_row() {
    let table = "x\n| endpoint | what it does |\n|---|---|\n| `GET /a?limit=` | a |\n| `GET /b`, `POST /c` `{x}` | b |\n\nafter";
    let found = readme_operations(table);
    assert_eq!(
        found,
        BTreeSet::from(["GET /a".to_owned(), "GET /b".into(), "POST /c".into()])
    );
    assert!(!found.contains("GET /after"));
}

/// Every file a person reads or the build runs: sources, docs, rules, scripts.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | ".git" | "node_modules" | "results" | "corpus" | "artifacts"
            ) {
                files(&path, out);
            }
        } else if [".rs", ".md", ".yml", ".yaml", ".sh", ".py", ".js"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            out.push(path);
        }
    }
}

fn alert_rules(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// What is wrong with how `text` names alerts: a `Shop…` name the rules do not have, or a rule's
/// name written without its `Shop` prefix.
fn misnamed_alerts(text: &str, rules: &BTreeSet<String>) -> Vec<String> {
    let mut wrong = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    for word in &words {
        let named = word.len() > 4
            && word.starts_with("Shop")
            && word[4..].starts_with(|c: char| c.is_ascii_uppercase());
        if named && !rules.contains(*word) {
            wrong.push(format!("{word} is not in the rules"));
        }
        if rules.contains(&format!("Shop{word}")) {
            wrong.push(format!("{word} is named without its prefix (Shop{word})"));
        }
    }
    wrong
}

#[test]
fn every_alert_named_in_code_and_docs_exists() {
    let root = root();
    let rules_path = root.join("ops/prometheus/rules/shop.yml");
    let rules = alert_rules(&fs::read_to_string(&rules_path).expect("rules file"));
    assert!(
        rules.len() >= 10,
        "the rules file has its alerts: {rules:?}"
    );
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut wrong = Vec::new();
    let mut named = 0;
    // The rules themselves, and this file's examples of wrong names.
    let this = root.join("api/tests/docs.rs");
    for path in all.iter().filter(|p| **p != rules_path && **p != this) {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        named += rules.iter().filter(|r| text.contains(r.as_str())).count();
        for problem in misnamed_alerts(&text, &rules) {
            wrong.push(format!(
                "{}: {problem}",
                path.strip_prefix(&root).unwrap_or(path).display()
            ));
        }
    }
    assert!(named > 0, "docs name the alerts somewhere");
    assert!(
        wrong.is_empty(),
        "alerts misnamed:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_alert_check_fires_on_an_unknown_and_an_unprefixed_name() {
    let rules = BTreeSet::from(["ShopDeadLetters".to_owned()]);
    assert!(misnamed_alerts("see `ShopDeadLetters`.", &rules).is_empty());
    assert_eq!(
        misnamed_alerts("the ShopDeadLetter alert, and `DeadLetters`", &rules),
        [
            "ShopDeadLetter is not in the rules",
            "DeadLetters is named without its prefix (ShopDeadLetters)"
        ]
    );
}
