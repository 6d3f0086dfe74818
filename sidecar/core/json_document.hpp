#pragma once
// A strict, read-only JSON (RFC 8259) document for the hot paths that only read a few fields of each
// response: one pass over the text, one flat vector of nodes, no allocation per value. Strings stay
// views into the text until asked for (unescaped then); numbers keep their text. nlohmann-json builds a
// heap object per member, which made JSON the largest part of the sidecar's own CPU per certificate
// (tests/bench/README.md).
//
// It accepts exactly what RFC 8259 accepts (and what nlohmann-json accepts): well-formed UTF-8, valid
// escapes including surrogate pairs, no trailing commas, no comments, nothing but whitespace after the
// value. Nesting deeper than `max_depth` and numbers beyond a double's range are refused (nlohmann-json
// refuses those numbers too). A duplicate key resolves to its last occurrence,
// as in nlohmann-json. The text must outlive the document and its values.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acme_sidecar::core {

class JsonDocument;

class JsonValue {
 public:
  enum class Type : std::uint8_t { Null, Boolean, Number, String, Array, Object };

  Type type() const;
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Boolean; }
  bool is_number() const { return type() == Type::Number; }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }
  // "null", "boolean", "number", "string", "array", "object" (for error messages).
  const char* type_name() const;

  // Booleans: the value; anything else: false.
  bool boolean() const;
  // Strings: the unescaped text (the raw text when nothing is escaped); anything else: "".
  std::string str() const;
  // True when the string has no escapes, so raw() is its value.
  bool plain() const;
  // Strings: the text between the quotes, escapes as written. Numbers: the number as written.
  std::string_view raw() const;
  // Numbers that are integers in range; nullopt for fractions, exponents, overflow and non-numbers.
  std::optional<std::int64_t> integer() const;
  // Strings equal to `s` after unescaping (no allocation when nothing is escaped).
  bool equals(std::string_view s) const;

  // Objects: the member's value (its last occurrence); nullopt when absent or not an object.
  std::optional<JsonValue> find(std::string_view key) const;
  // Objects: like find(), but absent and null are the same (as in Kubernetes objects).
  std::optional<JsonValue> get(std::string_view key) const;

  // Arrays: the elements; objects: the members' values; both in document order. Members' keys come
  // from key() on an object member.
  class Iterator;
  Iterator begin() const;
  Iterator end() const;
  std::size_t size() const;  // elements or members
  // For a value reached by iterating an object: its key (unescaped); "" otherwise.
  std::string key() const;
  // Same as key(), raw (escapes as written) — for comparisons that know the key is plain.
  std::string_view raw_key() const;
  bool key_equals(std::string_view s) const;

 private:
  friend class JsonDocument;
  JsonValue(const JsonDocument* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  const JsonDocument* doc_;
  std::uint32_t index_;
};

class JsonValue::Iterator {
 public:
  JsonValue operator*() const { return JsonValue(doc_, index_); }
  Iterator& operator++();
  bool operator==(const Iterator& o) const { return index_ == o.index_; }
  bool operator!=(const Iterator& o) const { return index_ != o.index_; }

 private:
  friend class JsonValue;
  Iterator(const JsonDocument* doc, std::uint32_t index, bool members)
      : doc_(doc), index_(index), members_(members) {}
  const JsonDocument* doc_;
  std::uint32_t index_;
  bool members_;  // iterating an object: each step skips the next member's key
};

class JsonDocument {
 public:
  // Parses `text`; on invalid JSON returns a document whose ok() is false and error() says why and where.
  static JsonDocument parse(std::string_view text, std::size_t max_depth = 512);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // The top-level value; a null when !ok().
  JsonValue root() const { return JsonValue(this, 0); }
  std::string_view text() const { return text_; }

 private:
  friend class JsonValue;
  friend class JsonValue::Iterator;
  friend class JsonParser;
  // One node per value and per object key. Containers span their descendants: `next` is the index just
  // past the last one, so siblings are one hop apart. Object members are (key node, value node) pairs.
  struct Node {
    std::uint32_t begin;   // strings: after the opening quote; numbers and literals: first character
    std::uint32_t length;  // strings: up to the closing quote; numbers: characters; containers: elements
    std::uint32_t next;    // index after this node's last descendant
    JsonValue::Type type;
    bool escaped;          // strings: contains a backslash; booleans: true
    bool key;              // an object member's key
  };
  std::string_view text_;
  std::vector<Node> nodes_;
  std::string error_;
};

// Appends `s` to `out` as a JSON string literal (quotes included): '"', '\\' and control characters
// escaped, UTF-8 byte for byte, and each byte that is not part of well-formed UTF-8 replaced by U+FFFD
// (so the text is always valid JSON, as with nlohmann's error_handler_t::replace).
void append_json_string(std::string& out, std::string_view s);

}  // namespace acme_sidecar::core
