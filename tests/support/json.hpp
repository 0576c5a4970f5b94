// SPDX-License-Identifier: Apache-2.0
// A small JSON reader for the test vectors (objects, arrays, strings, integers, booleans,
// null). Tests only: it throws std::runtime_error on anything it does not understand.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace testjson {

struct Value {
    enum class Type { null, boolean, number, string, array, object } type = Type::null;
    bool boolean = false;
    std::int64_t number = 0;
    std::string string;
    std::vector<Value> array;
    std::map<std::string, Value> object;

    bool has(const std::string& key) const { return type == Type::object && object.count(key) != 0; }
    const Value& operator[](const std::string& key) const {
        const auto it = object.find(key);
        if (type != Type::object || it == object.end()) throw std::runtime_error("json: no key '" + key + "'");
        return it->second;
    }
    const std::string& str() const {
        if (type != Type::string) throw std::runtime_error("json: not a string");
        return string;
    }
    std::int64_t num() const {
        if (type != Type::number) throw std::runtime_error("json: not a number");
        return number;
    }
};

class Parser {
public:
    explicit Parser(const std::string& text) : s_(text) {}
    Value parse() {
        Value v = value();
        skip();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(std::string("json: ") + what + " at offset " + std::to_string(i_));
    }
    void skip() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    bool eat(char c) {
        skip();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) fail("unexpected character");
    }
    bool word(const char* w) {
        const std::string t(w);
        if (s_.compare(i_, t.size(), t) != 0) return false;
        i_ += t.size();
        return true;
    }
    std::string string_body() {
        expect('"');
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_++];
            if (c == '\\') {
                if (i_ >= s_.size()) fail("bad escape");
                c = s_[i_++];
                switch (c) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    const unsigned long cp = std::stoul(s_.substr(i_, 4), nullptr, 16);
                    i_ += 4;
                    if (cp >= 0x80) fail("non-ASCII \\u escapes are not supported");
                    out += static_cast<char>(cp);
                    break;
                }
                default: out += c;
                }
            } else {
                out += c;
            }
        }
        if (i_ >= s_.size()) fail("unterminated string");
        ++i_;
        return out;
    }
    Value value() {
        skip();
        if (i_ >= s_.size()) fail("unexpected end");
        Value v;
        const char c = s_[i_];
        if (c == '{') {
            ++i_;
            v.type = Value::Type::object;
            if (eat('}')) return v;
            do {
                skip();
                std::string key = string_body();
                expect(':');
                v.object.emplace(std::move(key), value());
            } while (eat(','));
            expect('}');
        } else if (c == '[') {
            ++i_;
            v.type = Value::Type::array;
            if (eat(']')) return v;
            do {
                v.array.push_back(value());
            } while (eat(','));
            expect(']');
        } else if (c == '"') {
            v.type = Value::Type::string;
            v.string = string_body();
        } else if (word("true")) {
            v.type = Value::Type::boolean;
            v.boolean = true;
        } else if (word("false")) {
            v.type = Value::Type::boolean;
        } else if (word("null")) {
        } else {
            std::size_t used = 0;
            v.type = Value::Type::number;
            v.number = std::stoll(s_.substr(i_, 24), &used);
            i_ += used;
        }
        return v;
    }

    const std::string& s_;
    std::size_t i_ = 0;
};

inline Value parse(const std::string& text) { return Parser(text).parse(); }

}  // namespace testjson
