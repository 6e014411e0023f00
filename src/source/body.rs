//! What a handler's body extractor accepts: the type `T` of its `Json<T>`, read through the
//! crate's own structs and enums and their serde attributes (`rename_all`, `rename`, `default`,
//! `skip`, `flatten`, `transparent`), so a probe plan can send a body the handler takes when
//! no OpenAPI document describes it.

use std::collections::HashMap;

/// The JSON a type accepts, as far as the crate says.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Str,
    Uuid,
    DateTime,
    Date,
    Int,
    Float,
    Bool,
    Opt(Box<Shape>),
    List(Box<Shape>),
    Map,
    /// `serde_json::Value`: anything.
    Any,
    Object(Vec<Field>),
    /// A unit-only enum: the JSON names of its variants.
    OneOf(Vec<String>),
    /// A type the crate does not define (or defines more than once), by name.
    Unknown(String),
    /// A crate type, before [`resolve`].
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The name in JSON (after serde renames).
    pub name: String,
    pub shape: Shape,
    /// Absent from JSON is an error (no `Option`, no `#[serde(default)]`).
    pub required: bool,
    /// `#[serde(flatten)]`: its fields sit beside this struct's.
    pub flatten: bool,
}

/// What a crate defines under a name.
#[derive(Clone, Debug, PartialEq)]
pub enum Def {
    Struct(Vec<Field>),
    Enum(Vec<String>),
    /// A newtype, `#[serde(transparent)]` struct or type alias: the JSON of the inner type.
    Alias(Shape),
    /// Two definitions of one name: which one a handler means is not known.
    Ambiguous,
}

/// The body a handler reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Body {
    /// No body extractor: the handler reads no body.
    #[default]
    None,
    Json(Shape),
    /// A body of another kind (`Form`, `Bytes`, `String`, `Multipart`), by extractor name.
    Other(String),
}

/// Extractors that read no body (or whose type says nothing of it).
const BODY_EXTRACTORS: &[&str] = &[
    "Form",
    "Bytes",
    "String",
    "Multipart",
    "RawForm",
    "Body",
    "Request",
];

/// The body extractor among a handler's parameters.
pub fn extractor(sig: &syn::Signature) -> Body {
    for input in &sig.inputs {
        let syn::FnArg::Typed(t) = input else {
            continue;
        };
        let Some(seg) = last_segment(&t.ty) else {
            continue;
        };
        let name = seg.ident.to_string();
        if name == "Json" || (name.ends_with("Json") && first_arg(seg).is_some()) {
            return match first_arg(seg) {
                Some(inner) => Body::Json(shape_of(inner)),
                None => Body::Other(name),
            };
        }
        if BODY_EXTRACTORS.contains(&name.as_str()) {
            return Body::Other(name);
        }
    }
    Body::None
}

fn last_segment(ty: &syn::Type) -> Option<&syn::PathSegment> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last(),
        syn::Type::Reference(r) => last_segment(&r.elem),
        syn::Type::Paren(p) => last_segment(&p.elem),
        syn::Type::Group(g) => last_segment(&g.elem),
        _ => None,
    }
}

fn first_arg(seg: &syn::PathSegment) -> Option<&syn::Type> {
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return None;
    };
    a.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The JSON shape of a Rust type, crate types left [`Shape::Named`].
pub fn shape_of(ty: &syn::Type) -> Shape {
    match ty {
        syn::Type::Reference(r) => return shape_of(&r.elem),
        syn::Type::Paren(p) => return shape_of(&p.elem),
        syn::Type::Group(g) => return shape_of(&g.elem),
        syn::Type::Slice(s) => return Shape::List(Box::new(shape_of(&s.elem))),
        syn::Type::Array(a) => return Shape::List(Box::new(shape_of(&a.elem))),
        _ => {}
    }
    let Some(seg) = last_segment(ty) else {
        return Shape::Unknown(quote_type(ty));
    };
    let inner = || first_arg(seg).map(shape_of).unwrap_or(Shape::Any);
    match seg.ident.to_string().as_str() {
        "String" | "str" | "char" | "Cow" | "PathBuf" | "Url" | "IpAddr" => Shape::Str,
        "Uuid" | "Ulid" => Shape::Uuid,
        "DateTime" | "NaiveDateTime" | "OffsetDateTime" | "PrimitiveDateTime" | "Timestamp" => {
            Shape::DateTime
        }
        "NaiveDate" | "Date" => Shape::Date,
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" | "NonZeroU32" | "NonZeroU64" => Shape::Int,
        "f32" | "f64" | "Decimal" | "BigDecimal" => Shape::Float,
        "bool" => Shape::Bool,
        "Option" => Shape::Opt(Box::new(inner())),
        "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "IndexSet" | "SmallVec" => {
            Shape::List(Box::new(inner()))
        }
        "HashMap" | "BTreeMap" | "IndexMap" | "Map" => Shape::Map,
        "Box" | "Arc" | "Rc" => inner(),
        "Value" => Shape::Any,
        name => Shape::Named(name.to_string()),
    }
}

fn quote_type(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Tuple(_) => "a tuple".into(),
        syn::Type::ImplTrait(_) | syn::Type::TraitObject(_) => "a trait type".into(),
        _ => "a type".into(),
    }
}

/// The serde attributes racecheck reads.
#[derive(Default)]
struct Serde {
    rename: Option<String>,
    rename_all: Option<String>,
    default: bool,
    skip: bool,
    flatten: bool,
    transparent: bool,
    /// `tag`, `untagged`, `content`: an enum's JSON is not its variant names.
    tagged: bool,
}

fn serde_of(attrs: &[syn::Attribute]) -> Serde {
    let mut s = Serde::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        // An attribute racecheck cannot read changes nothing it knows.
        let _ = a.parse_nested_meta(|m| {
            let key = m
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            let text = |m: &syn::meta::ParseNestedMeta| -> syn::Result<Option<String>> {
                if m.input.peek(syn::Token![=]) {
                    let v: syn::Expr = m.value()?.parse()?;
                    return Ok(crate::source::index::str_lit(&v));
                }
                if m.input.peek(syn::token::Paren) {
                    // `rename(deserialize = "x")`: the name a request uses.
                    let mut de = None;
                    m.parse_nested_meta(|inner| {
                        let v: syn::Expr = inner.value()?.parse()?;
                        if inner.path.is_ident("deserialize") {
                            de = crate::source::index::str_lit(&v);
                        }
                        Ok(())
                    })?;
                    return Ok(de);
                }
                Ok(None)
            };
            match key.as_str() {
                "rename" => s.rename = text(&m)?,
                "rename_all" => s.rename_all = text(&m)?,
                "default" => {
                    text(&m)?;
                    s.default = true;
                }
                "skip" | "skip_deserializing" => s.skip = true,
                "flatten" => s.flatten = true,
                "transparent" => s.transparent = true,
                "tag" | "untagged" | "content" => {
                    text(&m)?;
                    s.tagged = true;
                }
                _ => {
                    text(&m)?;
                }
            }
            Ok(())
        });
    }
    s
}

/// What a struct accepts.
pub fn struct_def(s: &syn::ItemStruct) -> Def {
    let outer = serde_of(&s.attrs);
    let fields: Vec<&syn::Field> = s.fields.iter().collect();
    if matches!(s.fields, syn::Fields::Unnamed(_)) || outer.transparent {
        let kept: Vec<&&syn::Field> = fields.iter().filter(|f| !serde_of(&f.attrs).skip).collect();
        return match kept.as_slice() {
            [one] => Def::Alias(shape_of(&one.ty)),
            _ => Def::Alias(Shape::Unknown(s.ident.to_string())),
        };
    }
    let mut out = vec![];
    for f in fields {
        let Some(ident) = &f.ident else { continue };
        let attrs = serde_of(&f.attrs);
        if attrs.skip {
            continue;
        }
        let rust = ident.to_string();
        let rust = rust.trim_start_matches("r#");
        let name = attrs.rename.clone().unwrap_or_else(|| {
            outer
                .rename_all
                .as_deref()
                .map(|r| field_case(rust, r))
                .unwrap_or_else(|| rust.to_string())
        });
        let shape = shape_of(&f.ty);
        out.push(Field {
            name,
            required: !(attrs.default || outer.default || matches!(shape, Shape::Opt(_))),
            shape,
            flatten: attrs.flatten,
        });
    }
    Def::Struct(out)
}

/// What a unit-only, externally tagged enum accepts: its variant names.
pub fn enum_def(e: &syn::ItemEnum) -> Def {
    let outer = serde_of(&e.attrs);
    let unit = e
        .variants
        .iter()
        .all(|v| matches!(v.fields, syn::Fields::Unit));
    if outer.tagged || !unit {
        return Def::Alias(Shape::Unknown(e.ident.to_string()));
    }
    let names = e
        .variants
        .iter()
        .filter_map(|v| {
            let a = serde_of(&v.attrs);
            if a.skip {
                return None;
            }
            let rust = v.ident.to_string();
            Some(a.rename.unwrap_or_else(|| {
                outer
                    .rename_all
                    .as_deref()
                    .map(|r| variant_case(&rust, r))
                    .unwrap_or(rust)
            }))
        })
        .collect();
    Def::Enum(names)
}

/// serde's `rename_all` on a snake_case field name.
fn field_case(snake: &str, rule: &str) -> String {
    let words: Vec<&str> = snake.split('_').filter(|w| !w.is_empty()).collect();
    join(&words, rule).unwrap_or_else(|| snake.to_string())
}

/// serde's `rename_all` on a PascalCase variant name.
fn variant_case(pascal: &str, rule: &str) -> String {
    if rule == "PascalCase" {
        return pascal.to_string();
    }
    if rule == "lowercase" {
        return pascal.to_ascii_lowercase();
    }
    if rule == "UPPERCASE" {
        return pascal.to_ascii_uppercase();
    }
    let mut words: Vec<String> = vec![];
    for c in pascal.chars() {
        if c.is_uppercase() || words.is_empty() {
            words.push(String::new());
        }
        if let Some(w) = words.last_mut() {
            w.push(c.to_ascii_lowercase());
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    join(&words, rule).unwrap_or_else(|| pascal.to_string())
}

/// Lowercase words joined as `rule` says.
fn join(words: &[&str], rule: &str) -> Option<String> {
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    Some(match rule {
        "lowercase" => words.concat(),
        "UPPERCASE" => words.concat().to_ascii_uppercase(),
        "snake_case" => words.join("_"),
        "SCREAMING_SNAKE_CASE" => words.join("_").to_ascii_uppercase(),
        "kebab-case" => words.join("-"),
        "SCREAMING-KEBAB-CASE" => words.join("-").to_ascii_uppercase(),
        "PascalCase" => words.iter().map(|w| cap(w)).collect(),
        "camelCase" => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { cap(w) })
            .collect(),
        _ => return None,
    })
}

/// How deep crate types are followed inside one another.
const MAX_DEPTH: usize = 6;
/// How many fields one body may have in all: types that nest wide and deep would otherwise
/// multiply.
const MAX_FIELDS: usize = 2_000;

/// `shape` with the crate's types read in, to a bounded depth and size.
pub fn resolve(shape: &Shape, defs: &HashMap<String, Def>) -> Shape {
    let mut budget = MAX_FIELDS;
    resolve_at(shape, defs, 0, &mut budget)
}

fn resolve_at(
    shape: &Shape,
    defs: &HashMap<String, Def>,
    depth: usize,
    budget: &mut usize,
) -> Shape {
    match shape {
        Shape::Opt(s) => Shape::Opt(Box::new(resolve_at(s, defs, depth + 1, budget))),
        Shape::List(s) => Shape::List(Box::new(resolve_at(s, defs, depth + 1, budget))),
        Shape::Named(name) if depth < MAX_DEPTH => match defs.get(name) {
            Some(Def::Struct(fields)) if fields.len() <= *budget => {
                *budget -= fields.len();
                let mut out = vec![];
                for f in fields {
                    let shape = resolve_at(&f.shape, defs, depth + 1, budget);
                    match (&shape, f.flatten) {
                        (Shape::Object(inner), true) => out.extend(inner.iter().cloned()),
                        (_, true) => out.push(Field {
                            shape: Shape::Unknown(format!("the flattened field `{}`", f.name)),
                            ..f.clone()
                        }),
                        _ => out.push(Field { shape, ..f.clone() }),
                    }
                }
                Shape::Object(out)
            }
            Some(Def::Struct(_)) => Shape::Unknown(format!("{name} (too large to sample)")),
            Some(Def::Enum(names)) => Shape::OneOf(names.clone()),
            Some(Def::Alias(s)) => resolve_at(s, defs, depth + 1, budget),
            Some(Def::Ambiguous) | None => Shape::Unknown(name.clone()),
        },
        Shape::Named(name) => Shape::Unknown(name.clone()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(code: &str) -> HashMap<String, Def> {
        let file: syn::File = syn::parse_str(code).unwrap();
        let mut out = HashMap::new();
        for item in file.items {
            match item {
                syn::Item::Struct(s) => {
                    out.insert(s.ident.to_string(), struct_def(&s));
                }
                syn::Item::Enum(e) => {
                    out.insert(e.ident.to_string(), enum_def(&e));
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn serde_renames_defaults_and_nesting() {
        let d = defs(
            r#"
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Withdraw {
                amount_cents: i64,
                #[serde(rename = "ref")]
                reference: Option<String>,
                #[serde(default)]
                note: String,
                #[serde(skip)]
                internal: u8,
                kind: Kind,
                #[serde(flatten)]
                meta: Meta,
                tags: Vec<Tag>,
                r#type: Id,
            }
            #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
            enum Kind { CashOut, Transfer }
            struct Meta { request_id: uuid::Uuid }
            struct Tag(String);
            #[serde(tag = "t")]
            enum Id { A }
            "#,
        );
        let s = resolve(&Shape::Named("Withdraw".into()), &d);
        let Shape::Object(fields) = s else {
            panic!("{s:?}")
        };
        let got: Vec<(&str, &Shape, bool)> = fields
            .iter()
            .map(|f| (f.name.as_str(), &f.shape, f.required))
            .collect();
        assert_eq!(
            got,
            vec![
                ("amountCents", &Shape::Int, true),
                ("ref", &Shape::Opt(Box::new(Shape::Str)), false),
                ("note", &Shape::Str, false),
                (
                    "kind",
                    &Shape::OneOf(vec!["CASH_OUT".into(), "TRANSFER".into()]),
                    true
                ),
                ("request_id", &Shape::Uuid, true),
                ("tags", &Shape::List(Box::new(Shape::Str)), true),
                ("type", &Shape::Unknown("Id".into()), true),
            ]
        );
    }

    /// Types that nest wide and deep stop at a budget instead of multiplying.
    #[test]
    fn wide_deep_types_stay_bounded() {
        let mut code = String::new();
        for level in 0..8 {
            code.push_str(&format!("struct T{level} {{"));
            for f in 0..40 {
                code.push_str(&format!("f{f}: T{},", level + 1));
            }
            code.push_str("}\n");
        }
        let d = defs(&code);
        fn count(s: &Shape) -> usize {
            match s {
                Shape::Object(fs) => fs.iter().map(|f| 1 + count(&f.shape)).sum(),
                Shape::Opt(s) | Shape::List(s) => count(s),
                _ => 0,
            }
        }
        let s = resolve(&Shape::Named("T0".into()), &d);
        assert!(count(&s) <= MAX_FIELDS, "{}", count(&s));
    }

    #[test]
    fn extractors() {
        let sig = |s: &str| -> syn::Signature {
            syn::parse_str::<syn::ItemFn>(&format!("{s} {{}}"))
                .unwrap()
                .sig
        };
        assert_eq!(
            extractor(&sig(
                "async fn f(State(s): State<App>, Json(b): Json<Incr>)"
            )),
            Body::Json(Shape::Named("Incr".into()))
        );
        assert_eq!(
            extractor(&sig(
                "async fn f(Path(id): Path<String>, axum::Json(b): axum::Json<Vec<u8>>)"
            )),
            Body::Json(Shape::List(Box::new(Shape::Int)))
        );
        assert_eq!(
            extractor(&sig("async fn f(Path(id): Path<String>)")),
            Body::None
        );
        assert_eq!(
            extractor(&sig("async fn f(Form(b): Form<Incr>)")),
            Body::Other("Form".into())
        );
    }
}
