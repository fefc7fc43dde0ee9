//! The seed's vocabulary rules: predicate aliases and the allowed predicates (AbstractSemantics' registry, 44 ids),
//! and the `ex:` instance-id slug.

use unicode_normalization::UnicodeNormalization;

/// Predicates an assertion may use (lowercase), as the seed's semantics registry lists them.
pub const PREDICATES: [&str; 44] = [
    "cito:confirms",
    "cito:disagreeswith",
    "cito:discusses",
    "cito:extends",
    "cito:providesdatafor",
    "cito:supports",
    "cito:usesdatafrom",
    "dcterms:abstract",
    "dcterms:created",
    "dcterms:creator",
    "dcterms:description",
    "dcterms:haspart",
    "dcterms:identifier",
    "dcterms:ispartof",
    "dcterms:modified",
    "dcterms:publisher",
    "dcterms:references",
    "dcterms:subject",
    "dcterms:title",
    "rdf:type",
    "schema:about",
    "schema:enddate",
    "schema:genre",
    "schema:instrument",
    "schema:knowsabout",
    "schema:location",
    "schema:mentions",
    "schema:name",
    "schema:nextitem",
    "schema:organizer",
    "schema:participant",
    "schema:previousitem",
    "schema:result",
    "schema:sameas",
    "schema:startdate",
    "schema:temporalcoverage",
    "skos:altlabel",
    "skos:broader",
    "skos:closematch",
    "skos:definition",
    "skos:exactmatch",
    "skos:narrower",
    "skos:preflabel",
    "skos:related",
];

/// Older or alternative predicate names and what they mean.
const ALIASES: [(&str, &str); 11] = [
    ("schema:description", "dcterms:description"),
    ("schema:creator", "dcterms:creator"),
    ("schema:awareness", "schema:knowsabout"),
    ("schema:hasparent", "dcterms:ispartof"),
    ("schema:hasmember", "dcterms:haspart"),
    ("schema:recognizedas", "skos:closematch"),
    ("schema:hasmemorysource", "dcterms:references"),
    ("schema:haspart", "dcterms:haspart"),
    ("schema:ispartof", "dcterms:ispartof"),
    ("dcterms:has_part", "dcterms:haspart"),
    ("dcterms:is_part_of", "dcterms:ispartof"),
];

/// The predicate an alias stands for; anything else trimmed.
pub fn normalize_predicate(p: &str) -> String {
    let key = p.trim().to_lowercase();
    ALIASES
        .iter()
        .find(|(from, _)| *from == key)
        .map_or_else(|| p.trim().to_string(), |(_, to)| (*to).to_string())
}

/// Whether `p` may be asserted: a registry predicate, or an `ex:` one when custom predicates are allowed.
pub fn predicate_allowed(p: &str, allow_custom: bool) -> bool {
    let p = p.trim().to_lowercase();
    PREDICATES.contains(&p.as_str()) || (allow_custom && p.starts_with("ex:"))
}

/// `ex:Person Alice Smith` → `ex:person-alice-smith` (NFKD folded to ASCII, kebab case); anything else as it is.
pub fn normalize_ex_curie(raw: &str) -> String {
    let value = raw.trim();
    if value.len() < 3 || !value[..3].eq_ignore_ascii_case("ex:") {
        return raw.to_string();
    }
    let folded: String = value[3..].trim().nfkd().filter(char::is_ascii).collect();
    let mut slug = String::with_capacity(folded.len());
    for c in folded.trim().to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        raw.to_string()
    } else {
        format!("ex:{slug}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_rules() {
        assert_eq!(
            normalize_ex_curie("ex:Person Alice Smith"),
            "ex:person-alice-smith"
        );
        assert_eq!(normalize_ex_curie(" EX:Café__au lait! "), "ex:cafe-au-lait");
        assert_eq!(normalize_ex_curie("ex:!!"), "ex:!!");
        assert_eq!(normalize_ex_curie("schema:Person"), "schema:Person");
        assert_eq!(normalize_predicate("Schema:HasPart"), "dcterms:haspart");
        assert_eq!(normalize_predicate(" rdf:type "), "rdf:type");
        assert!(predicate_allowed("RDF:Type", false));
        assert!(!predicate_allowed("ex:likes", false));
        assert!(predicate_allowed("ex:likes", true));
        assert!(!predicate_allowed("foaf:knows", true));
    }
}
