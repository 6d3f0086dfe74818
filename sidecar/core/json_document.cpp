#include "core/json_document.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace acme_sidecar::core {

using Type = JsonValue::Type;

namespace {
// Length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0 (RFC 3629 table 3-7).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return len;
}
}  // namespace

class JsonParser {
 public:
  JsonParser(JsonDocument& doc, std::size_t max_depth) : doc_(doc), s_(doc.text_), max_depth_(max_depth) {}

  void run() {
    // A UTF-8 byte order mark is skipped (RFC 8259 §8.1 allows it; nlohmann-json does the same).
    if (s_.size() >= 3 && s_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
    skip_ws();
    if (!value(0)) return;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected characters after the value");
  }

 private:
  using Node = JsonDocument::Node;

  bool fail(const char* what) {
    if (doc_.error_.empty()) doc_.error_ = std::string(what) + " at offset " + std::to_string(pos_);
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }
  std::uint32_t add(Type type, std::uint32_t begin, bool key = false) {
    doc_.nodes_.push_back(Node{begin, 0, 0, type, false, key});
    return static_cast<std::uint32_t>(doc_.nodes_.size() - 1);
  }
  void close_node(std::uint32_t index) { doc_.nodes_[index].next = static_cast<std::uint32_t>(doc_.nodes_.size()); }

  bool value(std::size_t depth) {
    if (pos_ >= s_.size()) return fail("unexpected end of input");
    switch (s_[pos_]) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return string(false);
      case 't': return literal("true", Type::Boolean, true);
      case 'f': return literal("false", Type::Boolean, false);
      case 'n': return literal("null", Type::Null, false);
      default: return number();
    }
  }

  bool literal(std::string_view word, Type type, bool truth) {
    if (s_.compare(pos_, word.size(), word) != 0) return fail("invalid literal");
    auto i = add(type, static_cast<std::uint32_t>(pos_));
    doc_.nodes_[i].escaped = truth;
    doc_.nodes_[i].length = static_cast<std::uint32_t>(word.size());
    pos_ += word.size();
    close_node(i);
    return true;
  }

  bool digits() {
    const auto start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool number() {
    const auto start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size()) return fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      digits();
    } else {
      return fail(start == pos_ ? "unexpected character" : "invalid number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digits()) return fail("invalid number: no digits after the decimal point");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digits()) return fail("invalid number: no digits in the exponent");
    }
    // A number beyond double's range (1e400) is refused, as nlohmann-json does: no reader could use it.
    // Short integers cannot overflow and skip the conversion.
    const auto text = s_.substr(start, pos_ - start);
    if (text.size() > 15 || text.find_first_of(".eE") != std::string_view::npos) {
      const std::string copy(text);  // strtod needs a terminated string
      if (!std::isfinite(std::strtod(copy.c_str(), nullptr))) return fail("number out of range");
    }
    auto i = add(Type::Number, static_cast<std::uint32_t>(start));
    doc_.nodes_[i].length = static_cast<std::uint32_t>(pos_ - start);
    close_node(i);
    return true;
  }

  // At a byte >= 0x80: consumes one well-formed UTF-8 sequence.
  bool utf8() {
    const auto len = utf8_length(s_, pos_);
    if (len == 0) return fail("invalid UTF-8 in a string");
    pos_ += len;
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // At the 'u' of \uXXXX: the code unit, or -1.
  long hex4() {
    if (pos_ + 4 >= s_.size()) return -1;
    long v = 0;
    for (int k = 1; k <= 4; ++k) {
      const int h = hex(s_[pos_ + k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    pos_ += 5;
    return v;
  }

  bool escape() {
    ++pos_;  // the backslash
    if (pos_ >= s_.size()) return fail("unterminated string");
    switch (s_[pos_]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': ++pos_; return true;
      case 'u': break;
      default: return fail("invalid escape in a string");
    }
    const long u = hex4();
    if (u < 0) return fail("invalid \\u escape");
    if (u >= 0xDC00 && u <= 0xDFFF) return fail("unpaired low surrogate in a string");
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (pos_ + 1 >= s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return fail("unpaired high surrogate");
      ++pos_;
      const long low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired high surrogate");
    }
    return true;
  }

  bool string(bool key) {
    ++pos_;  // the opening quote
    auto i = add(Type::String, static_cast<std::uint32_t>(pos_), key);
    bool escaped = false;
    while (true) {
      // The common case, plain ASCII, in a tight loop.
      while (pos_ < s_.size()) {
        const auto c = static_cast<unsigned char>(s_[pos_]);
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
        ++pos_;
      }
      if (pos_ >= s_.size()) return fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return fail("control character in a string");
      if (c == '\\') {
        escaped = true;
        if (!escape()) return false;
      } else if (!utf8()) {
        return false;
      }
    }
    auto& node = doc_.nodes_[i];
    node.length = static_cast<std::uint32_t>(pos_ - node.begin);
    node.escaped = escaped;
    ++pos_;  // the closing quote
    close_node(i);
    return true;
  }

  // '[' or '{' at pos_: elements (or members) separated by ',' up to `close`.
  template <typename Element>
  bool container(std::size_t depth, Type type, char close, const char* unterminated, const char* expected,
                 Element element) {
    if (depth >= max_depth_) return fail("nesting too deep");
    auto i = add(type, static_cast<std::uint32_t>(pos_));
    ++pos_;
    skip_ws();
    std::uint32_t count = 0;
    if (pos_ < s_.size() && s_[pos_] == close) {
      ++pos_;
    } else {
      while (true) {
        if (!element()) return false;
        ++count;
        skip_ws();
        if (pos_ >= s_.size()) return fail(unterminated);
        if (s_[pos_] == ',') {
          ++pos_;
          skip_ws();
          continue;
        }
        if (s_[pos_] == close) {
          ++pos_;
          break;
        }
        return fail(expected);
      }
    }
    doc_.nodes_[i].length = count;
    close_node(i);
    return true;
  }

  bool array(std::size_t depth) {
    return container(depth, Type::Array, ']', "unterminated array", "expected ',' or ']' in an array",
                     [&] { return value(depth + 1); });
  }

  bool object(std::size_t depth) {
    return container(depth, Type::Object, '}', "unterminated object", "expected ',' or '}' in an object", [&] {
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a string key in an object");
      if (!string(true)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':' after an object key");
      ++pos_;
      skip_ws();
      return value(depth + 1);
    });
  }

  JsonDocument& doc_;
  std::string_view s_;
  std::size_t max_depth_;
  std::size_t pos_ = 0;
};

JsonDocument JsonDocument::parse(std::string_view text, std::size_t max_depth) {
  JsonDocument doc;
  doc.text_ = text;
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    doc.error_ = "JSON text too large";
    doc.nodes_.assign(1, Node{0, 0, 1, Type::Null, false, false});
    return doc;
  }
  // Most values take more than eight characters; beyond that the vector grows as needed (a large list
  // must not reserve twice its size up front).
  doc.nodes_.reserve(std::min<std::size_t>(text.size() / 8, 4096) + 4);
  JsonParser(doc, max_depth).run();
  // A failed document's root is a null, so a caller that forgets ok() reads nothing instead of garbage.
  if (!doc.ok()) doc.nodes_.assign(1, Node{0, 0, 1, Type::Null, false, false});
  return doc;
}

namespace {

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

unsigned long hex4(std::string_view s, std::size_t at) {
  unsigned long v = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const char c = s[at + k];
    v = v * 16 + static_cast<unsigned long>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

// The parser has validated the escapes; this only decodes them.
std::string unescape(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        unsigned long cp = hex4(raw, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const unsigned long low = hex4(raw, i + 3);
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        break;
      }
      default: out += e; break;  // " \ /
    }
  }
  return out;
}

}  // namespace

// --- JsonValue ------------------------------------------------------------------------------------

Type JsonValue::type() const { return doc_->nodes_[index_].type; }

const char* JsonValue::type_name() const {
  switch (type()) {
    case Type::Null: return "null";
    case Type::Boolean: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "unknown";
}

bool JsonValue::boolean() const {
  const auto& n = doc_->nodes_[index_];
  return n.type == Type::Boolean && n.escaped;
}

std::string_view JsonValue::raw() const {
  const auto& n = doc_->nodes_[index_];
  if (n.type != Type::String && n.type != Type::Number) return {};
  return doc_->text_.substr(n.begin, n.length);
}

bool JsonValue::plain() const {
  const auto& n = doc_->nodes_[index_];
  return n.type == Type::String && !n.escaped;
}

std::string JsonValue::str() const {
  const auto& n = doc_->nodes_[index_];
  if (n.type != Type::String) return {};
  auto r = doc_->text_.substr(n.begin, n.length);
  return n.escaped ? unescape(r) : std::string(r);
}

bool JsonValue::equals(std::string_view s) const {
  const auto& n = doc_->nodes_[index_];
  if (n.type != Type::String) return false;
  auto r = doc_->text_.substr(n.begin, n.length);
  return n.escaped ? unescape(r) == s : r == s;
}

std::optional<std::int64_t> JsonValue::integer() const {
  const auto& n = doc_->nodes_[index_];
  if (n.type != Type::Number) return std::nullopt;
  auto r = doc_->text_.substr(n.begin, n.length);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(r.data(), r.data() + r.size(), v);
  if (ec != std::errc() || end != r.data() + r.size()) return std::nullopt;
  return v;
}

std::optional<JsonValue> JsonValue::find(std::string_view key) const {
  const auto& nodes = doc_->nodes_;
  if (nodes[index_].type != Type::Object) return std::nullopt;
  std::optional<JsonValue> found;
  for (std::uint32_t k = index_ + 1; k < nodes[index_].next; k = nodes[k + 1].next) {
    if (JsonValue(doc_, k).equals(key)) found = JsonValue(doc_, k + 1);
  }
  return found;
}

std::optional<JsonValue> JsonValue::get(std::string_view key) const {
  auto v = find(key);
  if (v && v->is_null()) return std::nullopt;
  return v;
}

JsonValue::Iterator JsonValue::begin() const {
  const auto& n = doc_->nodes_[index_];
  if (n.type == Type::Object) return Iterator(doc_, index_ + 2, true);
  if (n.type == Type::Array) return Iterator(doc_, index_ + 1, false);
  return end();
}

JsonValue::Iterator JsonValue::end() const {
  const auto& n = doc_->nodes_[index_];
  if (n.type == Type::Object) return Iterator(doc_, n.next + 1, true);
  return Iterator(doc_, n.next, false);
}

JsonValue::Iterator& JsonValue::Iterator::operator++() {
  index_ = doc_->nodes_[index_].next + (members_ ? 1 : 0);
  return *this;
}

std::size_t JsonValue::size() const {
  const auto& n = doc_->nodes_[index_];
  return n.type == Type::Object || n.type == Type::Array ? n.length : 0;
}

std::string JsonValue::key() const {
  if (index_ == 0 || !doc_->nodes_[index_ - 1].key) return {};
  return JsonValue(doc_, index_ - 1).str();
}

std::string_view JsonValue::raw_key() const {
  if (index_ == 0 || !doc_->nodes_[index_ - 1].key) return {};
  return JsonValue(doc_, index_ - 1).raw();
}

bool JsonValue::key_equals(std::string_view s) const {
  if (index_ == 0 || !doc_->nodes_[index_ - 1].key) return false;
  return JsonValue(doc_, index_ - 1).equals(s);
}


void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t run = 0;  // start of the pending unescaped run
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) continue;
    if (c >= 0x80) {
      if (const auto len = utf8_length(s, i)) {
        i += len - 1;
        continue;
      }
    }
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c >= 0x80) {
          out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not UTF-8 (as nlohmann's "replace")
        } else {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
    }
  }
  out.append(s, run, s.size() - run);
  out += '"';
}

}  // namespace acme_sidecar::core
