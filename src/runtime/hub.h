// Model downloads from a Hugging Face-style hub (`unigemma pull`, `-m hf:REPO`) and the local
// model cache (`unigemma ls`, `unigemma rm`).
//
// Endpoints (base URL $UG_HF_ENDPOINT, default https://huggingface.co; token $HF_TOKEN if set):
//   GET {base}/api/models/{repo}?blobs=true     file list ("siblings": rfilename, size, lfs.sha256)
//   GET {base}/{repo}/resolve/main/{file}       the file (redirects followed; Range for resume)
// Files land in {cache}/{owner}/{name}/{file} ({cache} = $UG_CACHE_DIR, else
// $XDG_CACHE_HOME/unigemma/models, else ~/.cache/unigemma/models). While downloading a file is
// "{file}.part"; it is renamed only after its size and SHA-256 match the hub's metadata (the LFS
// sha256 of the file list, else the X-Linked-Etag header). An interrupted download keeps the .part
// and resumes with a Range request next time; a checksum mismatch deletes it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ug::hub {

std::string endpoint();
std::string cache_dir();

// What `pull REPO[:FILE]` fetches: the text model, and the repo's projector and drafter GGUFs.
struct PullSpec {
  std::string repo;  // "owner/name"
  std::string file;  // exact file name, a quantization tag ("Q4_K_M"), or empty = choose
};
// Parses "owner/name", "owner/name:FILE" and "hf:owner/name[:FILE]"; throws ug::Error otherwise.
PullSpec parse_spec(const std::string& text);

struct PulledModel {
  std::string model;                    // local path of the text (or bundle) GGUF
  std::string mmproj;                   // empty when the repo has none
  std::string assistant;                // empty when the repo has none
  std::vector<std::string> downloaded;  // files fetched by this call (others were cached)
};

struct PullOptions {
  bool progress = false;                             // draw a progress bar on stderr
  std::function<void(const std::string& line)> log;  // one line per file (may be null)
};

// Resolves the repo's files and downloads those not yet in the cache. Throws ug::Error (one line)
// on network errors, HTTP errors, missing checksums and checksum mismatches.
PulledModel pull(const PullSpec& spec, const PullOptions& options = {});

// For `-m hf:REPO[:FILE]`: the cached files if complete, else pull().
PulledModel ensure(const std::string& spec_text, const PullOptions& options = {});

struct CachedFile {
  std::string repo;
  std::string file;
  std::string path;
  uint64_t bytes = 0;
  bool partial = false;  // a .part download not yet complete
};
std::vector<CachedFile> list_cache();
// Removes REPO (all its files) or REPO:FILE from the cache; returns the paths removed.
// Throws ug::Error when nothing matches.
std::vector<std::string> remove_from_cache(const std::string& spec_text);

// Companion files next to a cached model (same repo folder): mmproj / assistant GGUFs, or "".
std::string cached_companion(const std::string& model_path, const std::string& kind);

}  // namespace ug::hub
