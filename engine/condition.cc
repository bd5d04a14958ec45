#include "engine/condition.h"

#include <charconv>
#include <cstring>

#include <re2/re2.h>

namespace warden::engine {

std::optional<ValueType> ParseValueType(std::string_view name) {
  if (name == "string") return ValueType::kString;
  if (name == "number") return ValueType::kNumber;
  if (name == "bool") return ValueType::kBool;
  if (name == "list") return ValueType::kList;
  return std::nullopt;
}

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kDynamic: return "untyped";
    case ValueType::kBool: return "bool";
    case ValueType::kNumber: return "number";
    case ValueType::kString: return "string";
    case ValueType::kList: return "list";
    case ValueType::kLiteralList: return "literal list";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxLength = 4096;

enum class Tok : uint8_t {
  kEnd, kIdent, kString, kNumber, kLParen, kRParen, kLBracket, kRBracket, kComma, kDot,
  kEq, kNe, kLt, kLe, kGt, kGe, kAnd, kOr, kNot,
};

struct Token {
  Tok kind = Tok::kEnd;
  int offset = 0;
  std::string text;  // identifier or decoded string literal
  double number = 0;
};

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool Lex(std::string_view s, std::vector<Token>* out, ConditionError* err) {
  size_t i = 0;
  auto fail = [&](size_t at, std::string msg) {
    err->offset = static_cast<int>(at);
    err->message = std::move(msg);
    return false;
  };
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.offset = static_cast<int>(i);
    if (IsIdentStart(c)) {
      size_t j = i;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      t.kind = Tok::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (IsDigit(c) || (c == '-' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      size_t j = i + 1;
      while (j < s.size() && (IsDigit(s[j]) || s[j] == '.')) ++j;
      auto [p, ec] = std::from_chars(s.data() + i, s.data() + j, t.number);
      if (ec != std::errc() || p != s.data() + j) return fail(i, "invalid number");
      t.kind = Tok::kNumber;
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string v;
      bool closed = false;
      while (j < s.size()) {
        char d = s[j];
        if (d == c) {
          closed = true;
          ++j;
          break;
        }
        if (d == '\\') {
          if (j + 1 >= s.size()) break;
          char e = s[j + 1];
          switch (e) {
            case 'n': v += '\n'; break;
            case 't': v += '\t'; break;
            case '\\': v += '\\'; break;
            case '"': v += '"'; break;
            case '\'': v += '\''; break;
            default: return fail(j, std::string("invalid escape '\\") + e + "' in string");
          }
          j += 2;
          continue;
        }
        v += d;
        ++j;
      }
      if (!closed) return fail(i, "unterminated string literal");
      t.kind = Tok::kString;
      t.text = std::move(v);
      i = j;
    } else {
      auto two = [&](char next) { return i + 1 < s.size() && s[i + 1] == next; };
      switch (c) {
        case '(': t.kind = Tok::kLParen; ++i; break;
        case ')': t.kind = Tok::kRParen; ++i; break;
        case '[': t.kind = Tok::kLBracket; ++i; break;
        case ']': t.kind = Tok::kRBracket; ++i; break;
        case ',': t.kind = Tok::kComma; ++i; break;
        case '.': t.kind = Tok::kDot; ++i; break;
        case '=':
          if (!two('=')) return fail(i, "unexpected '=' (use '==')");
          t.kind = Tok::kEq; i += 2; break;
        case '!':
          if (two('=')) { t.kind = Tok::kNe; i += 2; } else { t.kind = Tok::kNot; ++i; }
          break;
        case '<':
          if (two('=')) { t.kind = Tok::kLe; i += 2; } else { t.kind = Tok::kLt; ++i; }
          break;
        case '>':
          if (two('=')) { t.kind = Tok::kGe; i += 2; } else { t.kind = Tok::kGt; ++i; }
          break;
        case '&':
          if (!two('&')) return fail(i, "unexpected '&' (use '&&')");
          t.kind = Tok::kAnd; i += 2; break;
        case '|':
          if (!two('|')) return fail(i, "unexpected '|' (use '||')");
          t.kind = Tok::kOr; i += 2; break;
        default: {
          unsigned char u = static_cast<unsigned char>(c);
          char buf[16];
          if (u >= 0x20 && u < 0x7f) {
            std::snprintf(buf, sizeof buf, "'%c'", c);
          } else {
            std::snprintf(buf, sizeof buf, "0x%02x", u);
          }
          return fail(i, std::string("unexpected character ") + buf);
        }
      }
    }
    out->push_back(std::move(t));
  }
  Token end;
  end.kind = Tok::kEnd;
  end.offset = static_cast<int>(s.size());
  out->push_back(end);
  return true;
}

}  // namespace

enum class NodeKind : uint8_t { kLiteral, kLiteralList, kPath, kHas, kCompare, kAnd, kOr, kNot };
enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kMatches, kStartsWith, kEndsWith };
enum class Root : uint8_t { kPrincipal, kResource, kContext };
enum class BuiltIn : uint8_t { kNone, kId, kType, kName, kRole, kRoles };

struct Literal {
  ValueType type = ValueType::kString;
  bool b = false;
  double num = 0;
  std::string str;
};

struct Condition::Node {
  NodeKind kind = NodeKind::kLiteral;
  ValueType type = ValueType::kDynamic;
  int offset = 0;
  int lhs = -1;
  int rhs = -1;
  Op op = Op::kEq;
  Literal lit;
  std::vector<Literal> list;
  Root root = Root::kResource;
  BuiltIn builtin = BuiltIn::kNone;
  std::string key;
  std::unique_ptr<RE2> re;
};

namespace {

using Node = Condition::Node;

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kEq: return "==";
    case Op::kNe: return "!=";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
    case Op::kIn: return "in";
    case Op::kMatches: return "matches";
    case Op::kStartsWith: return "startsWith";
    case Op::kEndsWith: return "endsWith";
  }
  return "?";
}

bool IsScalar(ValueType t) {
  return t == ValueType::kDynamic || t == ValueType::kBool || t == ValueType::kNumber ||
         t == ValueType::kString;
}
bool BoolOk(ValueType t) { return t == ValueType::kDynamic || t == ValueType::kBool; }
bool Known(ValueType t) { return t != ValueType::kDynamic; }

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const ConditionScope& scope, std::vector<Node>* nodes,
         ConditionError* err)
      : t_(tokens), scope_(scope), nodes_(nodes), err_(err) {}

  int ParseAll() {
    int root = ParseOr();
    if (root < 0) return -1;
    if (Peek().kind != Tok::kEnd) return Fail(Peek().offset, "unexpected " + Describe(Peek()));
    if (!BoolOk(N(root).type)) {
      return Fail(N(root).offset, "condition must be boolean, not " +
                                      std::string(ValueTypeName(N(root).type)));
    }
    return root;
  }

 private:
  const Token& Peek() const { return t_[i_]; }
  const Token& Next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  Node& N(int i) { return (*nodes_)[i]; }
  int Fail(int offset, std::string msg) {
    if (err_->message.empty()) {
      err_->offset = offset;
      err_->message = std::move(msg);
    }
    return -1;
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd: return "end of expression";
      case Tok::kIdent: return "'" + t.text + "'";
      case Tok::kString: return "string literal";
      case Tok::kNumber: return "number";
      default: return "operator";
    }
  }
  int Add(Node n) {
    nodes_->push_back(std::move(n));
    return static_cast<int>(nodes_->size()) - 1;
  }
  int Binary(NodeKind kind, int lhs, int rhs, int offset) {
    const char* name = kind == NodeKind::kAnd ? "'&&'" : "'||'";
    if (!BoolOk(N(lhs).type)) return Fail(N(lhs).offset, std::string("operand of ") + name + " must be boolean");
    if (!BoolOk(N(rhs).type)) return Fail(N(rhs).offset, std::string("operand of ") + name + " must be boolean");
    Node n;
    n.kind = kind;
    n.type = ValueType::kBool;
    n.offset = offset;
    n.lhs = lhs;
    n.rhs = rhs;
    return Add(std::move(n));
  }

  int ParseOr() {
    int lhs = ParseAnd();
    while (lhs >= 0 && Peek().kind == Tok::kOr) {
      int off = Next().offset;
      int rhs = ParseAnd();
      if (rhs < 0) return -1;
      lhs = Binary(NodeKind::kOr, lhs, rhs, off);
    }
    return lhs;
  }
  int ParseAnd() {
    int lhs = ParseUnary();
    while (lhs >= 0 && Peek().kind == Tok::kAnd) {
      int off = Next().offset;
      int rhs = ParseUnary();
      if (rhs < 0) return -1;
      lhs = Binary(NodeKind::kAnd, lhs, rhs, off);
    }
    return lhs;
  }
  int ParseUnary() {
    if (++depth_ > kMaxDepth) return Fail(Peek().offset, "expression nested too deeply");
    int result;
    if (Peek().kind == Tok::kNot) {
      int off = Next().offset;
      int operand = ParseUnary();
      if (operand < 0) {
        result = -1;
      } else if (!BoolOk(N(operand).type)) {
        result = Fail(N(operand).offset, "operand of '!' must be boolean");
      } else {
        Node n;
        n.kind = NodeKind::kNot;
        n.type = ValueType::kBool;
        n.offset = off;
        n.lhs = operand;
        result = Add(std::move(n));
      }
    } else {
      result = ParseCompare();
    }
    --depth_;
    return result;
  }

  std::optional<Op> PeekOp() const {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kEq: return Op::kEq;
      case Tok::kNe: return Op::kNe;
      case Tok::kLt: return Op::kLt;
      case Tok::kLe: return Op::kLe;
      case Tok::kGt: return Op::kGt;
      case Tok::kGe: return Op::kGe;
      case Tok::kIdent:
        if (t.text == "in") return Op::kIn;
        if (t.text == "matches") return Op::kMatches;
        if (t.text == "startsWith") return Op::kStartsWith;
        if (t.text == "endsWith") return Op::kEndsWith;
        return std::nullopt;
      default: return std::nullopt;
    }
  }

  int ParseCompare() {
    int lhs = ParseTerm();
    if (lhs < 0) return -1;
    std::optional<Op> op = PeekOp();
    if (!op) {
      if (N(lhs).type == ValueType::kLiteralList) {
        return Fail(N(lhs).offset, "a list literal is only allowed on the right of 'in'");
      }
      return lhs;
    }
    int op_off = Next().offset;
    int rhs = ParseTerm();
    if (rhs < 0) return -1;
    return TypeCheckCompare(*op, op_off, lhs, rhs);
  }

  int TypeCheckCompare(Op op, int op_off, int lhs, int rhs) {
    ValueType lt = N(lhs).type;
    ValueType rt = N(rhs).type;
    std::string opname = "'" + std::string(OpName(op)) + "'";
    if (lt == ValueType::kLiteralList) {
      return Fail(N(lhs).offset, "a list literal is only allowed on the right of 'in'");
    }
    if (rt == ValueType::kLiteralList && op != Op::kIn) {
      return Fail(N(rhs).offset, "a list literal is only allowed on the right of 'in'");
    }
    auto mismatch = [&]() {
      return Fail(op_off, "type mismatch: " + std::string(ValueTypeName(lt)) + " " +
                              std::string(OpName(op)) + " " + std::string(ValueTypeName(rt)));
    };
    std::unique_ptr<RE2> re;
    switch (op) {
      case Op::kEq:
      case Op::kNe:
        if (!IsScalar(lt) || !IsScalar(rt)) return mismatch();
        if (Known(lt) && Known(rt) && lt != rt) return mismatch();
        break;
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        auto orderable = [](ValueType t) {
          return t == ValueType::kDynamic || t == ValueType::kNumber || t == ValueType::kString;
        };
        if (!orderable(lt) || !orderable(rt)) return mismatch();
        if (Known(lt) && Known(rt) && lt != rt) return mismatch();
        break;
      }
      case Op::kIn:
        if (!IsScalar(lt)) return mismatch();
        if (rt == ValueType::kList) {
          if (Known(lt) && lt != ValueType::kString) return mismatch();
        } else if (rt == ValueType::kLiteralList) {
          if (Known(lt)) {
            for (const Literal& l : N(rhs).list) {
              if (l.type != lt) {
                return Fail(N(rhs).offset, "type mismatch: " + std::string(ValueTypeName(lt)) +
                                               " in a list holding a " +
                                               std::string(ValueTypeName(l.type)));
              }
            }
          }
        } else if (rt != ValueType::kDynamic) {
          return Fail(N(rhs).offset, "right side of 'in' must be a list");
        }
        break;
      case Op::kMatches: {
        if (N(rhs).kind != NodeKind::kLiteral || rt != ValueType::kString) {
          return Fail(N(rhs).offset, "right side of 'matches' must be a string literal");
        }
        if (Known(lt) && lt != ValueType::kString) return mismatch();
        RE2::Options options;
        options.set_log_errors(false);
        re = std::make_unique<RE2>(N(rhs).lit.str, options);
        if (!re->ok()) return Fail(N(rhs).offset, "invalid regular expression: " + re->error());
        break;
      }
      case Op::kStartsWith:
      case Op::kEndsWith:
        if ((Known(lt) && lt != ValueType::kString) || (Known(rt) && rt != ValueType::kString)) {
          return mismatch();
        }
        break;
    }
    Node n;
    n.kind = NodeKind::kCompare;
    n.type = ValueType::kBool;
    n.offset = op_off;
    n.op = op;
    n.lhs = lhs;
    n.rhs = rhs;
    n.re = std::move(re);
    return Add(std::move(n));
  }

  bool ParseLiteral(const Token& t, Literal* out) {
    if (t.kind == Tok::kString) {
      out->type = ValueType::kString;
      out->str = t.text;
      return true;
    }
    if (t.kind == Tok::kNumber) {
      out->type = ValueType::kNumber;
      out->num = t.number;
      return true;
    }
    if (t.kind == Tok::kIdent && (t.text == "true" || t.text == "false")) {
      out->type = ValueType::kBool;
      out->b = t.text == "true";
      return true;
    }
    return false;
  }

  int ParsePath(Node* n) {
    const Token& root = Next();
    if (root.kind != Tok::kIdent) {
      return Fail(root.offset, "expected principal, resource or context, found " + Describe(root));
    }
    if (root.text == "principal") {
      n->root = Root::kPrincipal;
    } else if (root.text == "resource") {
      n->root = Root::kResource;
    } else if (root.text == "context") {
      n->root = Root::kContext;
    } else {
      return Fail(root.offset, "unknown name '" + root.text +
                                   "' (expected principal., resource., context., a literal or has(...))");
    }
    n->kind = NodeKind::kPath;
    n->offset = root.offset;
    int segments = 0;
    while (Peek().kind == Tok::kDot) {
      Next();
      const Token& seg = Next();
      if (seg.kind != Tok::kIdent) {
        return Fail(seg.offset, "expected an attribute name after '.', found " + Describe(seg));
      }
      if (!n->key.empty()) n->key += '.';
      n->key += seg.text;
      ++segments;
    }
    if (segments == 0) {
      return Fail(Peek().offset, "expected '.' and an attribute name after '" + root.text + "'");
    }
    n->type = ValueType::kDynamic;
    if (n->root == Root::kPrincipal) {
      if (n->key == "id") { n->builtin = BuiltIn::kId; n->type = ValueType::kString; }
      else if (n->key == "type") { n->builtin = BuiltIn::kType; n->type = ValueType::kString; }
      else if (n->key == "name") { n->builtin = BuiltIn::kName; n->type = ValueType::kString; }
      else if (n->key == "role") { n->builtin = BuiltIn::kRole; n->type = ValueType::kString; }
      else if (n->key == "roles") { n->builtin = BuiltIn::kRoles; n->type = ValueType::kList; }
    } else if (n->root == Root::kResource) {
      bool found = false;
      for (const auto& [name, type] : scope_.resource_attributes) {
        if (name == n->key) {
          n->type = type;
          found = true;
          break;
        }
      }
      if (!found && scope_.resource_closed) {
        return Fail(n->offset, "unknown attribute 'resource." + n->key +
                                   "' (not declared by the rule's models in the catalog)");
      }
    }
    return 0;
  }

  int ParseTerm() {
    const Token& t = Peek();
    Node n;
    n.offset = t.offset;
    if (ParseLiteral(t, &n.lit)) {
      Next();
      n.kind = NodeKind::kLiteral;
      n.type = n.lit.type;
      return Add(std::move(n));
    }
    switch (t.kind) {
      case Tok::kLParen: {
        Next();
        if (++depth_ > kMaxDepth) return Fail(t.offset, "expression nested too deeply");
        int inner = ParseOr();
        --depth_;
        if (inner < 0) return -1;
        if (Peek().kind != Tok::kRParen) return Fail(Peek().offset, "expected ')', found " + Describe(Peek()));
        Next();
        return inner;
      }
      case Tok::kLBracket: {
        Next();
        n.kind = NodeKind::kLiteralList;
        n.type = ValueType::kLiteralList;
        if (Peek().kind != Tok::kRBracket) {
          while (true) {
            Literal lit;
            if (!ParseLiteral(Peek(), &lit)) {
              return Fail(Peek().offset, "expected a literal in the list, found " + Describe(Peek()));
            }
            Next();
            n.list.push_back(std::move(lit));
            if (Peek().kind == Tok::kComma) {
              Next();
              continue;
            }
            break;
          }
        }
        if (Peek().kind != Tok::kRBracket) return Fail(Peek().offset, "expected ',' or ']', found " + Describe(Peek()));
        Next();
        return Add(std::move(n));
      }
      case Tok::kIdent:
        if (t.text == "has" && t_[i_ + 1].kind == Tok::kLParen) {
          Next();
          Next();
          if (ParsePath(&n) < 0) return -1;
          n.kind = NodeKind::kHas;
          n.type = ValueType::kBool;
          n.offset = t.offset;
          if (Peek().kind != Tok::kRParen) return Fail(Peek().offset, "expected ')' after has(path, found " + Describe(Peek()));
          Next();
          return Add(std::move(n));
        }
        if (ParsePath(&n) < 0) return -1;
        return Add(std::move(n));
      default:
        return Fail(t.offset, "expected a value, found " + Describe(t));
    }
  }

  const std::vector<Token>& t_;
  const ConditionScope& scope_;
  std::vector<Node>* nodes_;
  ConditionError* err_;
  size_t i_ = 0;
  int depth_ = 0;
};

// A runtime operand: a view of an attribute value or a literal; never owns memory.
struct Operand {
  enum class Kind : uint8_t { kMissing, kBool, kNumber, kString, kList, kLiteralList } kind = Kind::kMissing;
  bool b = false;
  double num = 0;
  std::string_view str;
  const std::vector<std::string>* list = nullptr;
  const std::vector<Literal>* literals = nullptr;
};

Operand FromValue(const Value* v) {
  Operand o;
  if (v == nullptr) return o;
  switch (v->index()) {
    case 1: o.kind = Operand::Kind::kBool; o.b = std::get<bool>(*v); break;
    case 2: o.kind = Operand::Kind::kNumber; o.num = std::get<double>(*v); break;
    case 3: o.kind = Operand::Kind::kString; o.str = std::get<std::string>(*v); break;
    case 4: o.kind = Operand::Kind::kList; o.list = &std::get<std::vector<std::string>>(*v); break;
    default: break;
  }
  return o;
}

Operand FromLiteral(const Literal& l) {
  Operand o;
  switch (l.type) {
    case ValueType::kBool: o.kind = Operand::Kind::kBool; o.b = l.b; break;
    case ValueType::kNumber: o.kind = Operand::Kind::kNumber; o.num = l.num; break;
    case ValueType::kString: o.kind = Operand::Kind::kString; o.str = l.str; break;
    default: break;
  }
  return o;
}

// Equality of two scalars of the same kind; nullopt on a kind mismatch or non-scalar.
std::optional<bool> ScalarEquals(const Operand& a, const Operand& b) {
  if (a.kind != b.kind) return std::nullopt;
  switch (a.kind) {
    case Operand::Kind::kBool: return a.b == b.b;
    case Operand::Kind::kNumber: return a.num == b.num;
    case Operand::Kind::kString: return a.str == b.str;
    default: return std::nullopt;
  }
}

EvalResult FromBool(bool b) { return b ? EvalResult::kTrue : EvalResult::kFalse; }

struct EvalContext {
  const Principal& principal;
  const Attributes& resource;
  const Attributes& context;
};

class Evaluator {
 public:
  Evaluator(const std::vector<Node>& nodes, const EvalContext& ctx) : nodes_(nodes), ctx_(ctx) {}

  EvalResult Bool(int i) const {
    const Node& n = nodes_[i];
    switch (n.kind) {
      case NodeKind::kAnd: {
        EvalResult l = Bool(n.lhs);
        if (l == EvalResult::kFalse) return l;
        EvalResult r = Bool(n.rhs);
        if (r == EvalResult::kFalse) return r;
        return l == EvalResult::kError || r == EvalResult::kError ? EvalResult::kError : EvalResult::kTrue;
      }
      case NodeKind::kOr: {
        EvalResult l = Bool(n.lhs);
        if (l == EvalResult::kTrue) return l;
        EvalResult r = Bool(n.rhs);
        if (r == EvalResult::kTrue) return r;
        return l == EvalResult::kError || r == EvalResult::kError ? EvalResult::kError : EvalResult::kFalse;
      }
      case NodeKind::kNot: {
        EvalResult v = Bool(n.lhs);
        if (v == EvalResult::kError) return v;
        return v == EvalResult::kTrue ? EvalResult::kFalse : EvalResult::kTrue;
      }
      case NodeKind::kHas: return FromBool(Path(n).kind != Operand::Kind::kMissing);
      case NodeKind::kCompare: return Compare(n);
      case NodeKind::kLiteral:
      case NodeKind::kPath: {
        Operand o = Term(i);
        if (o.kind != Operand::Kind::kBool) return EvalResult::kError;
        return FromBool(o.b);
      }
      case NodeKind::kLiteralList: return EvalResult::kError;
    }
    return EvalResult::kError;
  }

 private:
  Operand Path(const Node& n) const {
    const Principal& p = ctx_.principal;
    Operand o;
    switch (n.root) {
      case Root::kPrincipal:
        switch (n.builtin) {
          case BuiltIn::kId: o.kind = Operand::Kind::kString; o.str = p.id; return o;
          case BuiltIn::kName: o.kind = Operand::Kind::kString; o.str = p.name; return o;
          case BuiltIn::kType: o.kind = Operand::Kind::kString; o.str = PrincipalTypeName(p.type); return o;
          case BuiltIn::kRole:
            if (p.roles.empty()) return o;
            o.kind = Operand::Kind::kString;
            o.str = p.roles.front();
            return o;
          case BuiltIn::kRoles: o.kind = Operand::Kind::kList; o.list = &p.roles; return o;
          case BuiltIn::kNone: return FromValue(p.attributes.Find(n.key));
        }
        return o;
      case Root::kResource: return FromValue(ctx_.resource.Find(n.key));
      case Root::kContext: return FromValue(ctx_.context.Find(n.key));
    }
    return o;
  }

  Operand Term(int i) const {
    const Node& n = nodes_[i];
    switch (n.kind) {
      case NodeKind::kLiteral: return FromLiteral(n.lit);
      case NodeKind::kLiteralList: {
        Operand o;
        o.kind = Operand::Kind::kLiteralList;
        o.literals = &n.list;
        return o;
      }
      case NodeKind::kPath: return Path(n);
      default: {
        EvalResult r = Bool(i);
        Operand o;
        if (r == EvalResult::kError) return o;
        o.kind = Operand::Kind::kBool;
        o.b = r == EvalResult::kTrue;
        return o;
      }
    }
  }

  EvalResult Compare(const Node& n) const {
    Operand l = Term(n.lhs);
    Operand r = Term(n.rhs);
    using K = Operand::Kind;
    if (l.kind == K::kMissing || r.kind == K::kMissing) return EvalResult::kError;
    switch (n.op) {
      case Op::kEq:
      case Op::kNe: {
        std::optional<bool> eq = ScalarEquals(l, r);
        if (!eq) return EvalResult::kError;
        return FromBool(n.op == Op::kEq ? *eq : !*eq);
      }
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        int cmp;
        if (l.kind == K::kNumber && r.kind == K::kNumber) {
          if (l.num != l.num || r.num != r.num) return EvalResult::kError;  // NaN
          cmp = l.num < r.num ? -1 : (l.num > r.num ? 1 : 0);
        } else if (l.kind == K::kString && r.kind == K::kString) {
          int c = l.str.compare(r.str);
          cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
        } else {
          return EvalResult::kError;
        }
        switch (n.op) {
          case Op::kLt: return FromBool(cmp < 0);
          case Op::kLe: return FromBool(cmp <= 0);
          case Op::kGt: return FromBool(cmp > 0);
          default: return FromBool(cmp >= 0);
        }
      }
      case Op::kIn:
        if (l.kind != K::kBool && l.kind != K::kNumber && l.kind != K::kString) return EvalResult::kError;
        if (r.kind == K::kLiteralList) {
          for (const Literal& lit : *r.literals) {
            std::optional<bool> eq = ScalarEquals(l, FromLiteral(lit));
            if (eq && *eq) return EvalResult::kTrue;
          }
          return EvalResult::kFalse;
        }
        if (r.kind == K::kList) {
          if (l.kind != K::kString) return EvalResult::kError;
          for (const std::string& s : *r.list) {
            if (s == l.str) return EvalResult::kTrue;
          }
          return EvalResult::kFalse;
        }
        return EvalResult::kError;
      case Op::kMatches:
        if (l.kind != K::kString || n.re == nullptr) return EvalResult::kError;
        return FromBool(RE2::PartialMatch(re2::StringPiece(l.str.data(), l.str.size()), *n.re));
      case Op::kStartsWith:
        if (l.kind != K::kString || r.kind != K::kString) return EvalResult::kError;
        return FromBool(l.str.starts_with(r.str));
      case Op::kEndsWith:
        if (l.kind != K::kString || r.kind != K::kString) return EvalResult::kError;
        return FromBool(l.str.ends_with(r.str));
    }
    return EvalResult::kError;
  }

  const std::vector<Node>& nodes_;
  const EvalContext& ctx_;
};

}  // namespace

Condition::Condition() = default;
Condition::~Condition() = default;

std::unique_ptr<const Condition> Condition::Compile(std::string_view text,
                                                    const ConditionScope& scope,
                                                    ConditionError* error) {
  *error = ConditionError{};
  if (text.size() > kMaxLength) {
    error->message = "condition longer than " + std::to_string(kMaxLength) + " bytes";
    return nullptr;
  }
  std::vector<Token> tokens;
  if (!Lex(text, &tokens, error)) return nullptr;
  if (tokens.size() == 1) {
    error->message = "empty condition";
    return nullptr;
  }
  std::unique_ptr<Condition> c(new Condition());
  c->text_ = std::string(text);
  Parser parser(tokens, scope, &c->nodes_, error);
  c->root_ = parser.ParseAll();
  if (c->root_ < 0) {
    if (error->message.empty()) error->message = "invalid condition";
    return nullptr;
  }
  for (const Node& n : c->nodes_) {
    if ((n.kind == NodeKind::kPath || n.kind == NodeKind::kHas) && n.root == Root::kPrincipal) c->reads_principal_ = true;
  }
  return c;
}

EvalResult Condition::Evaluate(const Principal& principal, const Attributes& resource,
                               const Attributes& context) const {
  EvalContext ctx{principal, resource, context};
  return Evaluator(nodes_, ctx).Bool(root_);
}

}  // namespace warden::engine
