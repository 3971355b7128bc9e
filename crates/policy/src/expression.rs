//! CloudWatch metric math, the subset capstan supports: a metric defined as an expression over
//! the policy's other metrics, e.g. `100 * (1 - conns / 400)`.
//!
//! The subset (docs/policy.md, "Expression metrics"): numbers; metric ids (a lowercase letter,
//! then letters, digits and `_`); `+ - * /` with the usual precedence, left to right, and
//! parentheses; unary minus; `ABS(e)`; and `AVG`, `MAX`, `MIN`, `SUM` of an array of
//! expressions, `MAX([a, b])`, which CloudWatch computes per timestamp. Anything else
//! CloudWatch knows (`MAX(a)` over time, `FILL`, `IF`, `RATE`, `SEARCH`, ...) is refused.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expression {
    /// A number, e.g. `400` or `0.5`.
    Number(f64),
    /// Another metric of the policy, by its id.
    Metric(String),
    /// `-e`.
    Negate(Box<Expression>),
    /// `left op right`.
    Binary {
        /// The operator.
        op: Operator,
        /// The left operand.
        left: Box<Expression>,
        /// The right operand.
        right: Box<Expression>,
    },
    /// `ABS(e)`: the absolute value.
    Abs(Box<Expression>),
    /// `F([a, b, ...])`: a function of an array, taken per timestamp.
    Aggregate {
        /// The function.
        function: Aggregate,
        /// The array's elements, at least one.
        elements: Vec<Expression>,
    },
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// `+`
    Add,
    /// `-`
    Subtract,
    /// `*`
    Multiply,
    /// `/`
    Divide,
}

/// A function of an array of the supported subset, taken per timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// `AVG([a, b, ...])`: the mean of the elements.
    Avg,
    /// `MAX([a, b, ...])`: the largest element.
    Max,
    /// `MIN([a, b, ...])`: the smallest element.
    Min,
    /// `SUM([a, b, ...])`: the sum of the elements.
    Sum,
}

/// The functions of the subset, as written, for messages.
pub const FUNCTIONS: &str = "ABS, AVG, MAX, MIN, SUM";

/// How `ABS` is written.
const ABS: &str = "ABS";

impl Aggregate {
    /// The function written `name`, if it is one.
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "AVG" => Self::Avg,
            "MAX" => Self::Max,
            "MIN" => Self::Min,
            "SUM" => Self::Sum,
            _ => return None,
        })
    }

    /// How the function is written.
    fn name(self) -> &'static str {
        match self {
            Self::Avg => "AVG",
            Self::Max => "MAX",
            Self::Min => "MIN",
            Self::Sum => "SUM",
        }
    }
}

/// Why an expression does not parse: where (a character offset into the expression), what,
/// and how to fix it when there is something useful to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Characters before the offending one.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl SyntaxError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        Self {
            offset,
            message: message.into(),
            help: None,
        }
    }

    fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl Expression {
    /// Parses `text` as an expression of the supported subset.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut parser = Parser {
            tokens: tokens(text)?,
            next: 0,
            end: text.chars().count(),
        };
        let expression = parser.sum()?;
        match parser.peek() {
            None => Ok(expression),
            Some((at, token)) => Err(SyntaxError::new(at, format!("unexpected {token}"))),
        }
    }

    /// The ids of the metrics the expression refers to.
    pub fn metrics(&self) -> BTreeSet<&str> {
        let mut found = BTreeSet::new();
        self.collect_metrics(&mut found);
        found
    }

    fn collect_metrics<'e>(&'e self, found: &mut BTreeSet<&'e str>) {
        match self {
            Self::Number(_) => {}
            Self::Metric(id) => {
                found.insert(id);
            }
            Self::Negate(inner) => inner.collect_metrics(found),
            Self::Binary { left, right, .. } => {
                left.collect_metrics(found);
                right.collect_metrics(found);
            }
            Self::Abs(inner) => inner.collect_metrics(found),
            Self::Aggregate { elements, .. } => {
                elements.iter().for_each(|e| e.collect_metrics(found));
            }
        }
    }

    /// The expression written with every metric id replaced by `rename(id)`: what
    /// GetMetricData is sent, where ids must be unique across the whole batch.
    pub fn render(&self, rename: &impl Fn(&str) -> String) -> String {
        match self {
            Self::Number(value) => value.to_string(),
            Self::Metric(id) => rename(id),
            Self::Negate(inner) => format!("-({})", inner.render(rename)),
            Self::Binary { op, left, right } => {
                format!("({} {op} {})", left.render(rename), right.render(rename))
            }
            Self::Abs(inner) => format!("{ABS}({})", inner.render(rename)),
            Self::Aggregate { function, elements } => {
                let elements: Vec<String> = elements.iter().map(|e| e.render(rename)).collect();
                format!("{}([{}])", function.name(), elements.join(", "))
            }
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Add => "+",
            Self::Subtract => "-",
            Self::Multiply => "*",
            Self::Divide => "/",
        })
    }
}

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    /// A name: a metric id, or a function when followed by `(`.
    Name(String),
    Symbol(char),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(value) => write!(f, "number `{value}`"),
            Self::Name(name) => write!(f, "`{name}`"),
            Self::Symbol(symbol) => write!(f, "`{symbol}`"),
        }
    }
}

/// The tokens of `text`, each with its character offset.
fn tokens(text: &str) -> Result<Vec<(usize, Token)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        let start = at;
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        let token = if c.is_ascii_digit() || c == '.' {
            while chars
                .get(at)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                at += 1;
            }
            let written: String = chars[start..at].iter().collect();
            let value = written
                .parse()
                .map_err(|_| SyntaxError::new(start, format!("`{written}` is not a number")))?;
            Token::Number(value)
        } else if c.is_ascii_alphabetic() || c == '_' {
            while chars
                .get(at)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                at += 1;
            }
            Token::Name(chars[start..at].iter().collect())
        } else if "+-*/()[],".contains(c) {
            at += 1;
            Token::Symbol(c)
        } else {
            return Err(SyntaxError::new(start, format!("unexpected `{c}`"))
                .with_help("metric math in capstan uses numbers, metric ids, `+ - * /`, parentheses and ABS, AVG, MAX, MIN, SUM"));
        };
        found.push((start, token));
    }
    Ok(found)
}

/// A recursive-descent parser over the tokens, one method per precedence level.
struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// The expression's length in characters, where "unexpected end" points.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(at, token)| (*at, token))
    }

    fn take(&mut self) -> Option<(usize, Token)> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    /// Takes `symbol`, or says what was found instead.
    fn expect(&mut self, symbol: char) -> Result<(), SyntaxError> {
        match self.take() {
            Some((_, Token::Symbol(c))) if c == symbol => Ok(()),
            Some((at, token)) => Err(SyntaxError::new(
                at,
                format!("expected `{symbol}`, found {token}"),
            )),
            None => Err(SyntaxError::new(
                self.end,
                format!("expected `{symbol}` at the end of the expression"),
            )),
        }
    }

    /// The operator at the cursor if it is one of `symbols`, taken.
    fn operator(&mut self, symbols: &[char]) -> Option<Operator> {
        let op = match self.peek() {
            Some((_, Token::Symbol(c))) if symbols.contains(c) => match c {
                '+' => Operator::Add,
                '-' => Operator::Subtract,
                '*' => Operator::Multiply,
                _ => Operator::Divide,
            },
            _ => return None,
        };
        self.next += 1;
        Some(op)
    }

    /// `product (('+' | '-') product)*`
    fn sum(&mut self) -> Result<Expression, SyntaxError> {
        let mut left = self.product()?;
        while let Some(op) = self.operator(&['+', '-']) {
            let right = self.product()?;
            left = binary(op, left, right);
        }
        Ok(left)
    }

    /// `unary (('*' | '/') unary)*`
    fn product(&mut self) -> Result<Expression, SyntaxError> {
        let mut left = self.unary()?;
        while let Some(op) = self.operator(&['*', '/']) {
            let right = self.unary()?;
            left = binary(op, left, right);
        }
        Ok(left)
    }

    /// `'-' unary | primary`
    fn unary(&mut self) -> Result<Expression, SyntaxError> {
        if let Some((_, Token::Symbol('-'))) = self.peek() {
            self.next += 1;
            return Ok(Expression::Negate(Box::new(self.unary()?)));
        }
        self.primary()
    }

    /// A number, a metric id, a call or a parenthesised expression.
    fn primary(&mut self) -> Result<Expression, SyntaxError> {
        match self.take() {
            Some((_, Token::Number(value))) => Ok(Expression::Number(value)),
            Some((_, Token::Symbol('('))) => {
                let inner = self.sum()?;
                self.expect(')')?;
                Ok(inner)
            }
            Some((at, Token::Name(name))) => match self.peek() {
                Some((_, Token::Symbol('('))) => self.call(at, &name),
                _ => metric(at, name),
            },
            Some((at, token)) => Err(SyntaxError::new(
                at,
                format!("expected a number, a metric id or `(`, found {token}"),
            )),
            None => Err(SyntaxError::new(
                self.end,
                "the expression ends where a number, a metric id or `(` is expected",
            )),
        }
    }

    /// `ABS(e)` or `F([e, ...])`, the cursor on the `(`.
    fn call(&mut self, at: usize, name: &str) -> Result<Expression, SyntaxError> {
        if name == ABS {
            self.expect('(')?;
            let inner = self.sum()?;
            self.expect(')')?;
            return Ok(Expression::Abs(Box::new(inner)));
        }
        let function = Aggregate::named(name).ok_or_else(|| {
            SyntaxError::new(
                at,
                format!("function `{name}` is not in capstan's supported subset of metric math"),
            )
            .with_help(format!("supported functions: {FUNCTIONS}"))
        })?;
        self.expect('(')?;
        let elements = self.array(at, function)?;
        self.expect(')')?;
        Ok(Expression::Aggregate { function, elements })
    }

    /// `[e, ...]`, the argument of `function` (written at `at`).
    fn array(&mut self, at: usize, function: Aggregate) -> Result<Vec<Expression>, SyntaxError> {
        let name = function.name();
        match self.peek() {
            Some((_, Token::Symbol('['))) => self.next += 1,
            _ => {
                return Err(SyntaxError::new(
                    at,
                    format!("`{name}` of one series (over time) is not in capstan's subset"),
                )
                .with_help(format!(
                    "give it an array, `{name}([a, b])`, taken per timestamp"
                )));
            }
        }
        let mut elements = vec![self.sum()?];
        while let Some((_, Token::Symbol(','))) = self.peek() {
            self.next += 1;
            elements.push(self.sum()?);
        }
        self.expect(']')?;
        Ok(elements)
    }
}

fn binary(op: Operator, left: Expression, right: Expression) -> Expression {
    Expression::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    }
}

/// A metric id, if `name` (at `at`) is a valid one: CloudWatch tells ids from functions by
/// their first letter, lowercase.
fn metric(at: usize, name: String) -> Result<Expression, SyntaxError> {
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Ok(Expression::Metric(name));
    }
    Err(
        SyntaxError::new(at, format!("`{name}` is not a valid CloudWatch metric id")).with_help(
            "metric ids start with a lowercase letter, then letters, digits and `_`; \
                 a function is followed by `(`",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::{Expression, Operator, SyntaxError};

    fn parse(text: &str) -> Expression {
        Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn error(text: &str) -> (usize, String) {
        let SyntaxError {
            offset, message, ..
        } = Expression::parse(text).expect_err(text);
        (offset, message)
    }

    fn plain(expression: &Expression) -> String {
        expression.render(&str::to_owned)
    }

    #[test]
    fn precedence_is_multiplication_first_then_left_to_right() {
        assert_eq!(plain(&parse("1 + 2 * 3")), "(1 + (2 * 3))");
        assert_eq!(plain(&parse("a - b - c")), "((a - b) - c)");
        assert_eq!(plain(&parse("a / b * c")), "((a / b) * c)");
        assert_eq!(
            plain(&parse("100 * (1 - conns / 400)")),
            "(100 * (1 - (conns / 400)))"
        );
        assert_eq!(plain(&parse("-a * 2")), "(-(a) * 2)");
    }

    #[test]
    fn functions_of_the_subset_parse_with_their_arguments() {
        assert_eq!(
            parse("ABS(a - 1)"),
            Expression::Abs(Box::new(Expression::Binary {
                op: Operator::Subtract,
                left: Box::new(Expression::Metric("a".into())),
                right: Box::new(Expression::Number(1.0)),
            }))
        );
        assert_eq!(
            plain(&parse("MAX([m1, m_2 * 2]) + SUM([a])")),
            "(MAX([m1, (m_2 * 2)]) + SUM([a]))"
        );
    }

    #[test]
    fn the_metrics_referred_to_are_listed_once() {
        let expression = parse("AVG([a, b]) / a + 0.5");
        let ids: Vec<&str> = expression.metrics().into_iter().collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn syntax_errors_point_at_the_offending_character() {
        assert_eq!(
            error("a +"),
            (
                3,
                "the expression ends where a number, a metric id or `(` is expected".into()
            )
        );
        assert_eq!(
            error("(a + b"),
            (6, "expected `)` at the end of the expression".into())
        );
        assert_eq!(error("a b"), (2, "unexpected `b`".into()));
        assert_eq!(error("a % b"), (2, "unexpected `%`".into()));
        assert_eq!(error("1.2.3"), (0, "`1.2.3` is not a number".into()));
        assert_eq!(
            error("a * )"),
            (4, "expected a number, a metric id or `(`, found `)`".into())
        );
    }

    #[test]
    fn functions_outside_the_subset_and_invalid_ids_are_refused() {
        assert_eq!(
            error("1 + RATE(a)"),
            (
                4,
                "function `RATE` is not in capstan's supported subset of metric math".into()
            )
        );
        assert_eq!(
            error("MAX(a)"),
            (
                0,
                "`MAX` of one series (over time) is not in capstan's subset".into()
            )
        );
        assert_eq!(
            error("Conns / 2"),
            (0, "`Conns` is not a valid CloudWatch metric id".into())
        );
        assert_eq!(
            error("_a"),
            (0, "`_a` is not a valid CloudWatch metric id".into())
        );
    }
}
