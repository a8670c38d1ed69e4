//! pongo2's `Value` over the few Go types LXD's template context holds: strings, Go `int`s and
//! `float64`s, booleans, `[]string`, string-keyed maps (`map[string]string`, LXD's
//! `config.Devices`), the `forloop` struct and the `config_get` function. Conversions, truth,
//! equality, length and iteration follow `value.go`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The `forloop` struct (`tagForLoopInformation`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LoopInfo {
    pub counter: i64,
    pub counter0: i64,
    pub revcounter: i64,
    pub revcounter0: i64,
    pub first: bool,
    pub last: bool,
    pub parent: Option<Rc<RefCell<LoopInfo>>>,
}

/// A Go map with string keys, and its Go type name (`map[string]string`, `config.Devices`).
#[derive(Debug, Clone)]
pub(crate) struct Map {
    pub ty: &'static str,
    pub entries: BTreeMap<String, V>,
}

#[derive(Debug, Clone)]
pub(crate) enum V {
    Nil,
    Str(Rc<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `[]string`.
    List(Rc<Vec<V>>),
    Map(Rc<Map>),
    Loop(Rc<RefCell<LoopInfo>>),
    /// LXD's `config_get(key, default)`.
    ConfigGet,
}

/// A `*pongo2.Value`: a value and whether it is marked safe (not escaped).
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub v: V,
    pub safe: bool,
}

impl From<V> for Val {
    fn from(v: V) -> Val {
        Val { v, safe: false }
    }
}

pub(crate) fn s(text: impl Into<Rc<str>>) -> V {
    V::Str(text.into())
}

/// Go's `int(f)` on amd64: out of range (or NaN) gives the most negative int.
pub(crate) fn go_int(f: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-TWO_63..TWO_63).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, enough for templates: decimal and exponent forms, `inf`,
/// `infinity`, `nan` (any case), a sign; out of range is an error there (Go gives ±Inf with an
/// error, which pongo2 turns into 0).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.to_ascii_lowercase().parse::<f64>().ok();
    }
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() {
        return None;
    }
    Some(f)
}

/// Go's `fmt.Sprintf("%f", f)`.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f:.6}")
    }
}

impl V {
    pub fn is_string(&self) -> bool {
        matches!(self, V::Str(_))
    }
    pub fn is_float(&self) -> bool {
        matches!(self, V::Float(_))
    }
    pub fn is_integer(&self) -> bool {
        matches!(self, V::Int(_))
    }
    pub fn is_number(&self) -> bool {
        self.is_integer() || self.is_float()
    }
    pub fn is_nil(&self) -> bool {
        matches!(self, V::Nil)
    }

    /// Go's `reflect.Kind` name, for pongo2's error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            V::Nil => "invalid",
            V::Str(_) => "string",
            V::Int(_) => "int",
            V::Float(_) => "float64",
            V::Bool(_) => "bool",
            V::List(_) => "slice",
            V::Map(_) => "map",
            V::Loop(_) => "ptr",
            V::ConfigGet => "func",
        }
    }

    /// `Value.String()`.
    pub fn string(&self) -> String {
        match self {
            V::Nil => String::new(),
            V::Str(s) => s.to_string(),
            V::Int(i) => i.to_string(),
            V::Float(f) => go_float(*f),
            V::Bool(true) => "True".into(),
            V::Bool(false) => "False".into(),
            // reflect.Value.String() of other kinds.
            V::List(_) => "<[]string Value>".into(),
            V::Map(m) => format!("<{} Value>", m.ty),
            V::Loop(_) => "<pongo2.tagForLoopInformation Value>".into(),
            V::ConfigGet => "<func(*pongo2.Value, *pongo2.Value) *pongo2.Value Value>".into(),
        }
    }

    pub fn integer(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            V::Float(f) => go_int(*f),
            V::Str(s) => parse_float(s).map(go_int).unwrap_or(0),
            _ => 0,
        }
    }

    pub fn float(&self) -> f64 {
        match self {
            V::Int(i) => *i as f64,
            V::Float(f) => *f,
            V::Str(s) => parse_float(s).unwrap_or(0.0),
            _ => 0.0,
        }
    }

    pub fn is_true(&self) -> bool {
        match self {
            V::Int(i) => *i != 0,
            V::Float(f) => *f != 0.0,
            V::Str(s) => !s.is_empty(),
            V::List(l) => !l.is_empty(),
            V::Map(m) => !m.entries.is_empty(),
            V::Bool(b) => *b,
            V::Loop(_) => true,
            V::Nil | V::ConfigGet => false,
        }
    }

    pub fn negate(&self) -> V {
        match self {
            V::Int(i) => V::Int(i64::from(*i == 0)),
            V::Float(f) => V::Float(if *f != 0.0 { 0.0 } else { 1.1 }),
            V::Str(s) => V::Bool(s.is_empty()),
            V::List(l) => V::Bool(l.is_empty()),
            V::Map(m) => V::Bool(m.entries.is_empty()),
            V::Bool(b) => V::Bool(!b),
            V::Loop(_) => V::Bool(false),
            V::Nil | V::ConfigGet => V::Bool(true),
        }
    }

    /// `Value.Len()`: runes of a string, elements of a list or map.
    pub fn len(&self) -> i64 {
        match self {
            V::Str(s) => s.chars().count() as i64,
            V::List(l) => l.len() as i64,
            V::Map(m) => m.entries.len() as i64,
            _ => 0,
        }
    }

    pub fn can_slice(&self) -> bool {
        matches!(self, V::Str(_) | V::List(_))
    }

    /// `Value.Index(i)`, `i` ≥ 0.
    pub fn index(&self, i: i64) -> V {
        match self {
            V::List(l) => l.get(i as usize).cloned().unwrap_or(V::Nil),
            V::Str(st) => st
                .chars()
                .nth(i as usize)
                .map(|c| s(c.to_string()))
                .unwrap_or_else(|| s("")),
            _ => V::Nil,
        }
    }

    /// `Value.Slice(i, j)` (runes of a string); a bad range is Go's panic.
    pub fn slice(&self, i: i64, j: i64) -> Result<V, String> {
        let bad = || format!("runtime error: slice bounds out of range [{i}:{j}]");
        match self {
            V::List(l) => {
                if i < 0 || j < i || j as usize > l.len() {
                    return Err(bad());
                }
                Ok(V::List(Rc::new(l[i as usize..j as usize].to_vec())))
            }
            V::Str(st) => {
                let runes: Vec<char> = st.chars().collect();
                if i < 0 || j < i || j as usize > runes.len() {
                    return Err(bad());
                }
                Ok(s(runes[i as usize..j as usize].iter().collect::<String>()))
            }
            _ => Ok(V::List(Rc::new(Vec::new()))),
        }
    }

    /// Go's `v.Interface() == other.Interface()` after the integer case (`EqualValueTo`).
    pub fn equal(&self, other: &V) -> Result<bool, String> {
        Ok(match (self, other) {
            (V::Int(a), V::Int(b)) => a == b,
            (V::Nil, V::Nil) => true,
            (V::Str(a), V::Str(b)) => a == b,
            (V::Float(a), V::Float(b)) => a == b,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::Loop(a), V::Loop(b)) => Rc::ptr_eq(a, b),
            (V::List(_), V::List(_)) => {
                return Err("runtime error: comparing uncomparable type []string".into())
            }
            (V::Map(a), V::Map(b)) if a.ty == b.ty => {
                return Err(format!("runtime error: comparing uncomparable type {}", a.ty))
            }
            (V::ConfigGet, V::ConfigGet) => {
                return Err("runtime error: comparing uncomparable type func(*pongo2.Value, *pongo2.Value) *pongo2.Value".into())
            }
            _ => false,
        })
    }

    /// `Value.Contains(other)` (the `in` operator).
    pub fn contains(&self, other: &V) -> Result<bool, String> {
        Ok(match self {
            V::Loop(_) => matches!(
                other.string().as_str(),
                "Counter"
                    | "Counter0"
                    | "Revcounter"
                    | "Revcounter0"
                    | "First"
                    | "Last"
                    | "Parentloop"
            ),
            V::Map(m) => match other {
                V::Str(k) => m.entries.contains_key(&**k),
                V::Int(_) => return Err(
                    "reflect.Value.MapIndex: value of type int is not assignable to type string"
                        .into(),
                ),
                _ => false,
            },
            V::Str(st) => st.contains(other.string().as_str()),
            V::List(l) => {
                for item in l.iter() {
                    if equal_value(other, item)? {
                        return Ok(true);
                    }
                }
                false
            }
            _ => false,
        })
    }
}

/// `EqualValueTo`.
pub(crate) fn equal_value(a: &V, b: &V) -> Result<bool, String> {
    if a.is_integer() && b.is_integer() {
        return Ok(a.integer() == b.integer());
    }
    a.equal(b)
}

/// pongo2's sort order for `sorted` (`valuesList.Less`, `sortedKeys.Less`).
pub(crate) fn less(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Int(x), V::Int(y)) => x < y,
        (V::Float(x), V::Float(y)) => x < y,
        _ => a.string() < b.string(),
    }
}
