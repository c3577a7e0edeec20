#include "runtime/hub.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/sha256.h"

namespace ug::hub {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}
bool contains(const std::string& hay, const std::string& needle) {
  return lower(hay).find(lower(needle)) != std::string::npos;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool valid_repo_part(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

// A repo file name from the server must stay inside the repo folder.
bool safe_relative(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(name)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

std::string url_escape_path(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Curl {
  CURL* h;
  curl_slist* headers = nullptr;
  Curl() : h(curl_easy_init()) {
    if (!h) throw Error("pull: cannot initialise libcurl");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (< 1 KB/s for a minute) is an interruption, not a hang.
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "unigemma/0.1");
    if (const char* token = std::getenv("HF_TOKEN"); token && *token) {
      headers = curl_slist_append(headers, (std::string("Authorization: Bearer ") + token).c_str());
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    }
  }
  ~Curl() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;
};

struct RemoteFile {
  std::string name;
  uint64_t size = 0;
  bool has_size = false;
  std::string sha256;  // lower-case hex, empty when the hub gave none
  bool lfs = false;
};

size_t append_to_string(char* p, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

std::vector<RemoteFile> list_repo(const std::string& repo) {
  curl_init_once();
  Curl c;
  const std::string url = endpoint() + "/api/models/" + repo + "?blobs=true";
  std::string body;
  curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) throw Error("pull: " + url + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
  if (status == 404 || status == 401) {
    throw Error("pull: repository '" + repo + "' not found on " + endpoint() + " (HTTP " +
                std::to_string(status) + (status == 401 ? "; gated repos need HF_TOKEN)" : ")"));
  }
  if (status != 200) throw Error("pull: " + url + ": HTTP " + std::to_string(status));
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("siblings") || !j["siblings"].is_array()) {
    throw Error("pull: " + url + ": unexpected answer (no 'siblings' file list)");
  }
  std::vector<RemoteFile> files;
  for (const json& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    RemoteFile f;
    f.name = s["rfilename"].get<std::string>();
    if (!safe_relative(f.name)) {
      throw Error("pull: " + url + ": file name '" + f.name + "' would leave the cache folder");
    }
    if (s.contains("size") && s["size"].is_number_unsigned()) {
      f.size = s["size"].get<uint64_t>();
      f.has_size = true;
    }
    if (s.contains("lfs") && s["lfs"].is_object()) {
      f.lfs = true;
      const json& l = s["lfs"];
      if (l.contains("sha256") && l["sha256"].is_string())
        f.sha256 = lower(l["sha256"].get<std::string>());
      if (l.contains("size") && l["size"].is_number_unsigned()) {
        f.size = l["size"].get<uint64_t>();
        f.has_size = true;
      }
    }
    files.push_back(std::move(f));
  }
  return files;
}

// ---- one download with resume ----

struct Transfer {
  std::FILE* out = nullptr;
  uint64_t offset = 0;     // bytes already in the .part before this request
  uint64_t received = 0;   // bytes written by this request
  long status = 0;         // status of the latest response (redirects included)
  bool restarted = false;  // the server ignored Range: the .part was truncated
  bool write_error = false;
  std::string linked_etag;  // X-Linked-Etag (the LFS sha256 on huggingface.co)
  std::string label;
  bool progress = false;
  uint64_t total = 0;
  double last_draw = -1;
};

size_t on_header(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    const size_t sp = line.find(' ');
    t->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
  } else if (lower(line).rfind("x-linked-etag:", 0) == 0) {
    std::string v = line.substr(14);
    v.erase(std::remove_if(
                v.begin(), v.end(),
                [](char ch) { return ch == '"' || std::isspace(static_cast<unsigned char>(ch)); }),
            v.end());
    t->linked_etag = lower(v);
  }
  return size * n;
}

size_t on_data(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->status != 200 && t->status != 206) return 0;  // error bodies are not file data
  if (t->status == 200 && t->offset > 0 && !t->restarted && t->received == 0) {
    // Range not honoured: start the file over.
    if (::ftruncate(fileno(t->out), 0) != 0 || std::fseek(t->out, 0, SEEK_SET) != 0) {
      t->write_error = true;
      return 0;
    }
    t->offset = 0;
    t->restarted = true;
  }
  if (std::fwrite(p, 1, size * n, t->out) != size * n) {
    t->write_error = true;
    return 0;
  }
  t->received += size * n;
  return size * n;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->progress) return 0;
  const double done = double(t->offset) + double(dlnow);
  const double total = t->total ? double(t->total) : double(t->offset) + double(dltotal);
  if (total <= 0 || done - t->last_draw < total / 200) return 0;
  t->last_draw = done;
  const int width = 30;
  const int fill = int(std::min(1.0, done / total) * width);
  std::fprintf(stderr, "\r%s [%s%s] %5.1f%% %.1f/%.1f MB", t->label.c_str(),
               std::string(size_t(fill), '#').c_str(),
               std::string(size_t(width - fill), ' ').c_str(), 100.0 * done / total, done / 1e6,
               total / 1e6);
  std::fflush(stderr);
  return 0;
}

void download(const std::string& repo, const RemoteFile& f, const fs::path& dest,
              const PullOptions& options) {
  curl_init_once();
  fs::create_directories(dest.parent_path());
  const fs::path part = dest.string() + ".part";
  std::error_code ec;
  uint64_t offset = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (f.has_size && offset > f.size) {
    fs::remove(part, ec);
    offset = 0;
  }
  Transfer t;
  t.offset = offset;
  t.total = f.has_size ? f.size : 0;
  t.label = f.name;
  t.progress = options.progress;
  if (!(f.has_size && offset == f.size)) {
    t.out = std::fopen(part.c_str(), offset ? "ab" : "wb");
    if (!t.out) throw Error("pull: cannot write " + part.string() + ": " + std::strerror(errno));
    Curl c;
    const std::string url = endpoint() + "/" + repo + "/resolve/main/" + url_escape_path(f.name);
    curl_easy_setopt(c.h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.h, CURLOPT_XFERINFODATA, &t);
    const std::string range = std::to_string(offset) + "-";
    if (offset > 0) curl_easy_setopt(c.h, CURLOPT_RANGE, range.c_str());
    const CURLcode rc = curl_easy_perform(c.h);
    const bool close_failed = std::fclose(t.out) != 0;
    if (t.progress && t.last_draw >= 0) std::fprintf(stderr, "\r\x1b[2K");
    if (t.write_error || close_failed) {
      throw Error("pull: cannot write " + part.string() + ": " + std::strerror(errno));
    }
    if (t.status != 200 && t.status != 206) {
      if (t.status == 416 && f.has_size) {
        // Nothing left to fetch; the checks below decide.
      } else {
        if (offset == 0) fs::remove(part, ec);
        throw Error("pull: " + url + ": HTTP " + std::to_string(t.status));
      }
    }
    if (rc != CURLE_OK) {
      const uint64_t have = t.offset + t.received;
      throw Error("pull: download of " + repo + "/" + f.name + " interrupted after " +
                  std::to_string(have) + (f.has_size ? " of " + std::to_string(f.size) : "") +
                  " bytes (" + curl_easy_strerror(rc) + "); run the same command again to resume");
    }
  }
  const uint64_t size = fs::file_size(part);
  if (f.has_size && size != f.size) {
    fs::remove(part, ec);
    throw Error("pull: " + repo + "/" + f.name + ": got " + std::to_string(size) +
                " bytes, the hub lists " + std::to_string(f.size) +
                "; the partial file was removed");
  }
  std::string expected = f.sha256.empty() ? t.linked_etag : f.sha256;
  if (expected.size() != 64) expected.clear();
  if (expected.empty() && f.lfs) {
    fs::remove(part, ec);
    throw Error("pull: " + repo + "/" + f.name +
                ": the hub gave no SHA-256 for this file; refusing an unverified download");
  }
  if (!expected.empty()) {
    const std::string got = sha256_file_hex(part.string());
    if (got != expected) {
      fs::remove(part, ec);
      throw Error("pull: " + repo + "/" + f.name + ": SHA-256 mismatch (expected " + expected +
                  ", got " + got + "); the download was removed");
    }
  }
  fs::rename(part, dest);
  if (options.log) {
    options.log("pulled " + repo + "/" + f.name + " (" + std::to_string(size) + " bytes" +
                (expected.empty() ? ", size checked" : ", sha256 verified") + ")");
  }
}

bool is_mmproj(const std::string& n) {
  return contains(fs::path(n).filename().string(), "mmproj");
}
bool is_assistant(const std::string& n) {
  const std::string f = fs::path(n).filename().string();
  return contains(f, "assistant") || contains(f, "draft") || contains(f, "-mtp");
}

// Picks one name among candidates by preference tags, else the first (sorted).
std::string prefer(std::vector<std::string> names, const std::vector<std::string>& tags) {
  if (names.empty()) return "";
  std::sort(names.begin(), names.end());
  for (const auto& tag : tags) {
    for (const auto& n : names) {
      if (contains(fs::path(n).filename().string(), tag)) return n;
    }
  }
  return names.front();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

struct Choice {
  std::string model, mmproj, assistant;
  std::vector<std::string> folder_files;  // HF folder mode: every file to fetch
};

// Decides which files `spec` means, from the repo's file names.
Choice choose(const PullSpec& spec, const std::vector<std::string>& names) {
  std::vector<std::string> text, mmproj, assistant;
  for (const auto& n : names) {
    if (!ends_with(lower(n), ".gguf")) continue;
    (is_mmproj(n) ? mmproj : is_assistant(n) ? assistant : text).push_back(n);
  }
  Choice c;
  if (text.empty() && mmproj.empty() && assistant.empty()) {
    // A Hugging Face checkpoint: the folder itself is loadable (and convertible).
    for (const auto& n : names) {
      const std::string l = lower(n);
      if (ends_with(l, ".safetensors") || ends_with(l, ".json") || ends_with(l, ".jinja")) {
        c.folder_files.push_back(n);
      }
    }
    if (c.folder_files.empty())
      throw Error("pull: '" + spec.repo + "' has no GGUF or safetensors files");
    return c;
  }
  if (!spec.file.empty()) {
    if (std::find(names.begin(), names.end(), spec.file) != names.end()) {
      c.model = spec.file;
    } else {
      std::vector<std::string> hits;
      for (const auto& n : text) {
        if (contains(n, spec.file)) hits.push_back(n);
      }
      if (hits.size() != 1) {
        throw Error("pull: '" + spec.file + "' matches " + std::to_string(hits.size()) +
                    " model files of " + spec.repo + " (" + join(text) + ")");
      }
      c.model = hits[0];
    }
  } else if (text.size() == 1) {
    c.model = text[0];
  } else if (!text.empty()) {
    std::vector<std::string> hits;
    for (const auto& n : text) {
      if (contains(n, "q4_k_m")) hits.push_back(n);
    }
    if (hits.size() != 1) {
      throw Error("pull: " + spec.repo + " has several models (" + join(text) +
                  "); name one: unigemma pull " + spec.repo + ":FILE");
    }
    c.model = hits[0];
  } else {
    throw Error("pull: " + spec.repo + " has no text model GGUF (only " + join(mmproj) +
                join(assistant) + ")");
  }
  if (!is_mmproj(c.model) && !is_assistant(c.model)) {
    c.mmproj = prefer(mmproj, {"bf16", "f16", "q8_0"});
    c.assistant = prefer(assistant, {"q8_0", "bf16", "f16"});
  }
  return c;
}

fs::path repo_dir(const std::string& repo) {
  return fs::path(cache_dir()) / repo;
}

std::vector<std::string> local_names(const std::string& repo) {
  std::vector<std::string> names;
  std::error_code ec;
  const fs::path dir = repo_dir(repo);
  if (!fs::is_directory(dir, ec)) return names;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && !ends_with(it->path().string(), ".part")) {
      names.push_back(fs::relative(it->path(), dir).string());
    }
  }
  return names;
}

}  // namespace

std::string endpoint() {
  const char* e = std::getenv("UG_HF_ENDPOINT");
  std::string s = e && *e ? e : "https://huggingface.co";
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string cache_dir() {
  if (const char* d = std::getenv("UG_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/unigemma/models";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/unigemma/models";
  throw Error("pull: no cache folder (set UG_CACHE_DIR, XDG_CACHE_HOME or HOME)");
}

PullSpec parse_spec(const std::string& text_in) {
  std::string text = text_in;
  if (text.rfind("hf:", 0) == 0) text = text.substr(3);
  PullSpec s;
  const size_t colon = text.find(':');
  s.repo = text.substr(0, colon);
  if (colon != std::string::npos) s.file = text.substr(colon + 1);
  const size_t slash = s.repo.find('/');
  if (slash == std::string::npos || !valid_repo_part(s.repo.substr(0, slash)) ||
      !valid_repo_part(s.repo.substr(slash + 1)) ||
      (colon != std::string::npos && (s.file.empty() || !safe_relative(s.file)))) {
    throw Error("'" + text_in +
                "' is not a model repository (expected owner/name or owner/name:FILE)");
  }
  return s;
}

PulledModel pull(const PullSpec& spec, const PullOptions& options) {
  const std::vector<RemoteFile> files = list_repo(spec.repo);
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  const Choice c = choose(spec, names);
  PulledModel out;
  auto fetch = [&](const std::string& name) -> std::string {
    if (name.empty()) return "";
    const RemoteFile& f = *std::find_if(files.begin(), files.end(),
                                        [&](const RemoteFile& r) { return r.name == name; });
    const fs::path dest = repo_dir(spec.repo) / f.name;
    std::error_code ec;
    if (fs::exists(dest, ec) && (!f.has_size || fs::file_size(dest, ec) == f.size)) {
      return dest.string();  // verified when it was pulled
    }
    download(spec.repo, f, dest, options);
    out.downloaded.push_back(dest.string());
    return dest.string();
  };
  if (!c.folder_files.empty()) {
    for (const auto& n : c.folder_files) fetch(n);
    out.model = repo_dir(spec.repo).string();
    return out;
  }
  out.model = fetch(c.model);
  out.mmproj = fetch(c.mmproj);
  out.assistant = fetch(c.assistant);
  return out;
}

PulledModel ensure(const std::string& spec_text, const PullOptions& options) {
  const PullSpec spec = parse_spec(spec_text);
  // Offline first: a complete earlier pull answers without the network.
  const std::vector<std::string> names = local_names(spec.repo);
  if (!names.empty()) {
    try {
      const Choice c = choose(spec, names);
      PulledModel m;
      const fs::path dir = repo_dir(spec.repo);
      if (!c.folder_files.empty()) {
        m.model = dir.string();
      } else {
        m.model = (dir / c.model).string();
        if (!c.mmproj.empty()) m.mmproj = (dir / c.mmproj).string();
        if (!c.assistant.empty()) m.assistant = (dir / c.assistant).string();
      }
      return m;
    } catch (const Error&) {
      // Not enough locally (or ambiguous): ask the hub.
    }
  }
  return pull(spec, options);
}

std::vector<CachedFile> list_cache() {
  std::vector<CachedFile> out;
  std::error_code ec;
  const fs::path root = cache_dir();
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& owner : fs::directory_iterator(root, ec)) {
    if (!owner.is_directory()) continue;
    for (const auto& name : fs::directory_iterator(owner.path(), ec)) {
      if (!name.is_directory()) continue;
      const std::string repo =
          owner.path().filename().string() + "/" + name.path().filename().string();
      for (auto it = fs::recursive_directory_iterator(name.path(), ec);
           it != fs::recursive_directory_iterator(); ++it) {
        if (!it->is_regular_file()) continue;
        CachedFile f;
        f.repo = repo;
        f.path = it->path().string();
        f.file = fs::relative(it->path(), name.path()).string();
        f.bytes = it->file_size();
        f.partial = ends_with(f.file, ".part");
        if (f.partial) f.file.resize(f.file.size() - 5);
        out.push_back(std::move(f));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const CachedFile& a, const CachedFile& b) {
    return a.repo != b.repo ? a.repo < b.repo : a.file < b.file;
  });
  return out;
}

std::vector<std::string> remove_from_cache(const std::string& spec_text) {
  const PullSpec spec = parse_spec(spec_text);
  std::vector<std::string> removed;
  std::error_code ec;
  const fs::path dir = repo_dir(spec.repo);
  if (spec.file.empty()) {
    if (fs::is_directory(dir, ec)) {
      for (const auto& f : list_cache()) {
        if (f.repo == spec.repo) removed.push_back(f.path);
      }
      fs::remove_all(dir, ec);
      if (ec) throw Error("rm: cannot remove " + dir.string() + ": " + ec.message());
      const fs::path owner = dir.parent_path();
      if (fs::is_empty(owner, ec)) fs::remove(owner, ec);
    }
  } else {
    for (const fs::path& p : {dir / spec.file, fs::path((dir / spec.file).string() + ".part")}) {
      if (fs::remove(p, ec)) removed.push_back(p.string());
    }
  }
  if (removed.empty())
    throw Error("rm: '" + spec_text + "' is not in the cache (" + cache_dir() + ")");
  return removed;
}

std::string cached_companion(const std::string& model_path, const std::string& kind) {
  std::error_code ec;
  std::string cache;
  try {
    cache = cache_dir();
  } catch (const Error&) {
    return "";  // no cache folder: nothing was pulled
  }
  const fs::path p = fs::absolute(model_path, ec);
  const fs::path root = fs::absolute(cache, ec);
  const std::string ps = p.string(), rs = root.string();
  if (ps.size() <= rs.size() || ps.compare(0, rs.size(), rs) != 0 || fs::is_directory(p, ec))
    return "";
  std::vector<std::string> hits;
  for (const auto& e : fs::directory_iterator(p.parent_path(), ec)) {
    const std::string n = e.path().filename().string();
    if (!ends_with(lower(n), ".gguf") || e.path() == p) continue;
    if ((kind == "mmproj" && is_mmproj(n)) || (kind == "assistant" && is_assistant(n))) {
      hits.push_back(e.path().string());
    }
  }
  std::sort(hits.begin(), hits.end());
  return hits.empty() ? "" : hits.front();
}

}  // namespace ug::hub
