// `unigemma chat` driven through a pseudo-terminal like a person would: a prompt, a streamed
// answer, /think on, Ctrl-C in the middle of an answer, /save, exit. Runs on the tiny
// real-vocabulary model.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

class PtySession {
 public:
  explicit PtySession(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      setenv("HOME", std::filesystem::temp_directory_path().c_str(), 1);
      setenv("TERM", "dumb", 1);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~PtySession() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }
  bool started() const { return pid_ > 0 && master_ >= 0; }
  void send(const std::string& s) {
    ASSERT_EQ(write(master_, s.data(), s.size()), ssize_t(s.size()));
  }
  // Reads until `needle` appears after position `from` of the transcript, or the timeout.
  bool wait_for(const std::string& needle, size_t from = 0, int timeout_s = 60) {
    return read_until([&] { return transcript_.find(needle, from) != std::string::npos; },
                      timeout_s);
  }
  // Reads until the transcript holds at least `size` bytes, or the timeout.
  bool wait_for_size(size_t size, int timeout_s = 60) {
    return read_until([&] { return transcript_.size() >= size; }, timeout_s);
  }
  template <class Done>
  bool read_until(const Done& done, int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 200) > 0) {
        char buf[4096];
        const ssize_t n = read(master_, buf, sizeof buf);
        if (n <= 0) return done();
        transcript_.append(buf, size_t(n));
      }
    }
    return true;
  }
  int wait_exit(int timeout_s = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      wait_for("\x01never", transcript_.size(), 1);  // drain output
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return -1;
  }
  const std::string& transcript() const { return transcript_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  std::string transcript_;
};

TEST(ChatPty, PromptThinkInterruptSaveExit) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string model = oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf";
  const auto save_path = std::filesystem::temp_directory_path() /
                         ("unigemma-pty-" + std::to_string(getpid()) + ".json");
  std::filesystem::remove(save_path);
  // A long answer budget so that Ctrl-C lands while the model is still writing.
  PtySession s({ug::test::cli_path(), "chat", "-m", model, "-t", "2", "-n", "100000", "--temp",
                "0.8", "--seed", "7"});
  ASSERT_TRUE(s.started());
  ASSERT_TRUE(s.wait_for("> ")) << s.transcript();

  size_t mark = s.transcript().size();
  s.send("/think on\r");
  ASSERT_TRUE(s.wait_for("thinking on", mark)) << s.transcript();

  mark = s.transcript().size();
  s.send("Tell me a long story.\r");
  // Let some answer stream (the echoed line, then at least 40 bytes of answer; not a newline,
  // which this random-weight model may take long to sample under a sanitizer), then interrupt it.
  ASSERT_TRUE(s.wait_for("\n", mark)) << s.transcript();
  ASSERT_TRUE(s.wait_for_size(s.transcript().find('\n', mark) + 1 + 40)) << s.transcript();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  s.send("\x03");
  ASSERT_TRUE(s.wait_for("stopped]", mark)) << s.transcript();

  mark = s.transcript().size();
  s.send("/save " + save_path.string() + "\r");
  ASSERT_TRUE(s.wait_for("saved 2 messages", mark)) << s.transcript();
  s.send("/exit\r");
  EXPECT_EQ(s.wait_exit(), 0) << s.transcript();

  std::ifstream in(save_path);
  ASSERT_TRUE(in.good());
  const auto saved = nlohmann::json::parse(in);
  ASSERT_EQ(saved["messages"].size(), 2u);
  EXPECT_EQ(saved["messages"][0]["content"], "Tell me a long story.");
  EXPECT_EQ(saved["messages"][1]["role"], "assistant");
  EXPECT_EQ(saved["enable_thinking"], true);
  std::filesystem::remove(save_path);
}

}  // namespace
