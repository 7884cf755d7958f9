#include "common/flags.h"

namespace kes {

FlagSet::Flag& FlagSet::Add(const std::string& name, char shorthand, Kind kind) {
  Flag& f = flags_[name];
  f.kind = kind;
  f.name = name;
  f.shorthand = shorthand;
  if (shorthand != 0) shorthands_[shorthand] = name;
  return f;
}

bool* FlagSet::Bool(const std::string& name, char shorthand, bool def) {
  Flag& f = Add(name, shorthand, Kind::kBool);
  f.b = std::make_unique<bool>(def);
  return f.b.get();
}

std::string* FlagSet::String(const std::string& name, char shorthand, std::string def) {
  Flag& f = Add(name, shorthand, Kind::kString);
  f.s = std::make_unique<std::string>(std::move(def));
  return f.s.get();
}

std::vector<std::string>* FlagSet::StringSlice(const std::string& name, char shorthand) {
  Flag& f = Add(name, shorthand, Kind::kSlice);
  f.v = std::make_unique<std::vector<std::string>>();
  return f.v.get();
}

bool FlagSet::Changed(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.changed;
}

Status FlagSet::Set(Flag& f, const std::string& flag_text, const std::string& value) {
  f.changed = true;
  switch (f.kind) {
    case Kind::kBool: {
      // strconv.ParseBool
      static const char* kTrue[] = {"1", "t", "T", "TRUE", "true", "True"};
      static const char* kFalse[] = {"0", "f", "F", "FALSE", "false", "False"};
      for (const char* t : kTrue) {
        if (value == t) return *f.b = true, Status::Ok();
      }
      for (const char* t : kFalse) {
        if (value == t) return *f.b = false, Status::Ok();
      }
      return Status::Invalid("invalid argument \"" + value + "\" for \"" + flag_text +
                             "\" flag: strconv.ParseBool: parsing \"" + value +
                             "\": invalid syntax");
    }
    case Kind::kString:
      *f.s = value;
      return Status::Ok();
    case Kind::kSlice: {
      if (value.empty()) return Status::Ok();
      size_t start = 0;
      while (true) {
        size_t comma = value.find(',', start);
        f.v->push_back(value.substr(start, comma == std::string::npos ? comma : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status FlagSet::Parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      positional_.insert(positional_.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      return Status::Ok();
    }
    if (a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a[1] == '-') {
      if (a.size() > 2 && a[2] == '-') return Status::Invalid("bad flag syntax: " + a);
      std::string name = a.substr(2);
      std::string value;
      bool has_value = false;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (name == "help") {
        help_ = true;
        return Status::Ok();
      }
      auto it = flags_.find(name);
      if (it == flags_.end()) return Status::Invalid("unknown flag: --" + name);
      Flag& f = it->second;
      if (f.kind == Kind::kBool) {
        KES_TRY(Set(f, "--" + name, has_value ? value : "true"));
      } else if (has_value) {
        KES_TRY(Set(f, "--" + name, value));
      } else if (i + 1 < args.size()) {
        KES_TRY(Set(f, "--" + name, args[++i]));
      } else {
        return Status::Invalid("flag needs an argument: --" + name);
      }
      continue;
    }
    // Shorthand(s): "-k", "-kf", "-s value", "-svalue", "-s=value".
    for (size_t j = 1; j < a.size(); ++j) {
      char c = a[j];
      if (c == 'h' && shorthands_.find('h') == shorthands_.end()) {
        help_ = true;
        return Status::Ok();
      }
      auto sh = shorthands_.find(c);
      if (sh == shorthands_.end()) {
        return Status::Invalid(std::string("unknown shorthand flag: '") + c + "' in " + a);
      }
      Flag& f = flags_[sh->second];
      std::string text = std::string("-") + c;
      if (f.kind == Kind::kBool) {
        if (j + 1 < a.size() && a[j + 1] == '=') {
          KES_TRY(Set(f, text, a.substr(j + 2)));
          break;
        }
        KES_TRY(Set(f, text, "true"));
        continue;
      }
      if (j + 1 < a.size()) {
        std::string v = a.substr(j + 1);
        if (!v.empty() && v[0] == '=') v.erase(0, 1);
        KES_TRY(Set(f, text, v));
      } else if (i + 1 < args.size()) {
        KES_TRY(Set(f, text, args[++i]));
      } else {
        return Status::Invalid(std::string("flag needs an argument: '") + c + "' in " + a);
      }
      break;
    }
  }
  return Status::Ok();
}

}  // namespace kes
