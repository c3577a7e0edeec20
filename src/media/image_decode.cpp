// Image decoders: libpng, libjpeg-turbo, giflib, libwebp from Debian; BMP, PPM and the EXIF
// orientation reader are our own. Every decoder learns the size from the header and checks the
// pixel limit before it allocates the pixel buffer.
#include <cstdio>  // jpeglib.h needs FILE

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>

#include "media/image.h"
#include "util/error.h"

namespace ug::media {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw Error(name + ": " + what);
}

void check_size(const std::string& name, int64_t w, int64_t h, const ImageLimits& limits) {
  if (w <= 0 || h <= 0) {
    fail(name, "invalid image size " + std::to_string(w) + "x" + std::to_string(h));
  }
  if (w > limits.max_pixels || h > limits.max_pixels || w * h > limits.max_pixels) {
    fail(name, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                   " pixels exceeds the limit of " + std::to_string(limits.max_pixels) + " pixels");
  }
}

// Pillow's alpha_composite(white, rgba).convert("RGB"): integer blend with 7 extra bits, rounded.
inline uint8_t over_white(uint32_t c, uint32_t a) {
  if (a == 0) return 255;
  if (a == 255) return uint8_t(c);
  constexpr uint32_t kBits = 7;
  const uint32_t coef1 = a << kBits;  // a*255*255*128 / (255*255)
  const uint32_t coef2 = (255u << kBits) - coef1;
  const uint32_t t = c * coef1 + 255u * coef2 + (0x80u << kBits);
  return uint8_t(((((t >> 8) + t) >> 8)) >> kBits);
}

Image from_rgba(int w, int h, const uint8_t* rgba) {
  Image img{w, h, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  const size_t n = size_t(w) * size_t(h);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t a = rgba[i * 4 + 3];
    for (int c = 0; c < 3; ++c) img.rgb[i * 3 + c] = over_white(rgba[i * 4 + c], a);
  }
  return img;
}

// ---- PNG (libpng simplified API: no longjmp, errors come back in image.message) ----
Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  // The size sits in IHDR right after the signature: refuse huge images before libpng reads on.
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t o) {
      return (uint32_t(data[o]) << 24) | (uint32_t(data[o + 1]) << 16) |
             (uint32_t(data[o + 2]) << 8) | data[o + 3];
    };
    check_size(name, be32(16), be32(20), limits);
  }
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) {
    fail(name, std::string("PNG: ") + png.message);
  }
  struct Guard {
    png_image* p;
    ~Guard() { png_image_free(p); }
  } guard{&png};
  check_size(name, png.width, png.height, limits);
  const bool has_alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0 || png.colormap_entries > 0;
  png.format = has_alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  const int channels = has_alpha ? 4 : 3;
  std::vector<uint8_t> buf(size_t(png.width) * png.height * channels);
  if (!png_image_finish_read(&png, nullptr, buf.data(), 0, nullptr)) {
    fail(name, std::string("PNG: ") + png.message);
  }
  if (has_alpha) return from_rgba(int(png.width), int(png.height), buf.data());
  return Image{int(png.width), int(png.height), std::move(buf)};
}

// ---- EXIF orientation (TIFF IFD0 tag 0x0112 inside the JPEG APP1 "Exif\0\0" segment) ----
int exif_orientation(const uint8_t* d, size_t n) {
  if (n < 14 || std::memcmp(d, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = d + 6;
  const size_t tn = n - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') {
    le = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    le = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t o) -> uint32_t {
    return le ? uint32_t(t[o] | (t[o + 1] << 8)) : uint32_t((t[o] << 8) | t[o + 1]);
  };
  auto u32 = [&](size_t o) -> uint32_t {
    return le ? (u16(o) | (u16(o + 2) << 16)) : ((u16(o) << 16) | u16(o + 2));
  };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > tn) return 1;
  const uint32_t count = u16(size_t(ifd));
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t e = ifd + 2 + uint64_t(i) * 12;
    if (e + 12 > tn) return 1;
    if (u16(size_t(e)) == 0x0112 && u16(size_t(e) + 2) == 3) {  // SHORT
      const uint32_t v = u16(size_t(e) + 8);
      return v >= 1 && v <= 8 ? int(v) : 1;
    }
  }
  return 1;
}

// What PIL.ImageOps.exif_transpose does for orientations 2..8.
Image apply_orientation(const Image& in, int orientation) {
  if (orientation <= 1 || orientation > 8) return in;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? in.height : in.width;
  out.height = swap ? in.width : in.height;
  out.rgb.resize(in.rgb.size());
  const int W = in.width, H = in.height;
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = 0, sy = 0;
      switch (orientation) {
        case 2:
          sx = W - 1 - x;
          sy = y;
          break;  // mirror horizontally
        case 3:
          sx = W - 1 - x;
          sy = H - 1 - y;
          break;  // rotate 180
        case 4:
          sx = x;
          sy = H - 1 - y;
          break;  // mirror vertically
        case 5:
          sx = y;
          sy = x;
          break;  // transpose
        case 6:
          sx = y;
          sy = H - 1 - x;
          break;  // rotate 90 clockwise
        case 7:
          sx = W - 1 - y;
          sy = H - 1 - x;
          break;  // transverse
        case 8:
          sx = W - 1 - y;
          sy = x;
          break;  // rotate 90 counter-clockwise
      }
      std::memcpy(&out.rgb[(size_t(y) * out.width + x) * 3], &in.rgb[(size_t(sy) * W + sx) * 3], 3);
    }
  }
  return out;
}

// ---- JPEG (libjpeg-turbo, ISLOW DCT and fancy upsampling: the library defaults Pillow uses) ----
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}
void jpeg_silence(j_common_ptr, int) {}

// Runs the libjpeg calls in a frame that holds no C++ objects, so longjmp skips no destructors.
// Returns false with `err.message` set on failure. `out` is sized by `alloc` after the header.
bool jpeg_decode_raw(const uint8_t* data, size_t size, JpegError& err,
                     jpeg_decompress_struct& cinfo, uint8_t* (*alloc)(void*, int, int), void* ctx,
                     int* orientation) {
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_silence;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1) {
      const int o = exif_orientation(m->data, m->data_length);
      if (o != 1) {
        *orientation = o;
        break;
      }
    }
  }
  cinfo.out_color_space = JCS_RGB;
  uint8_t* out = alloc(ctx, int(cinfo.image_width), int(cinfo.image_height));
  if (!out) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(err.message, sizeof(err.message), "size limit");
    return false;
  }
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(err.message, sizeof(err.message), "unsupported colour space");
    return false;
  }
  const size_t stride = size_t(cinfo.output_width) * 3;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + size_t(cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

struct JpegAllocCtx {
  const std::string* name;
  const ImageLimits* limits;
  Image* image;
  std::string error;
};

uint8_t* jpeg_alloc(void* p, int w, int h) {
  auto* ctx = static_cast<JpegAllocCtx*>(p);
  try {
    check_size(*ctx->name, w, h, *ctx->limits);
    ctx->image->width = w;
    ctx->image->height = h;
    ctx->image->rgb.assign(size_t(w) * size_t(h) * 3, 0);
    return ctx->image->rgb.data();
  } catch (const Error& e) {
    ctx->error = e.what();
    return nullptr;
  }
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits) {
  Image img;
  JpegAllocCtx ctx{&name, &limits, &img, {}};
  JpegError err{};
  jpeg_decompress_struct cinfo{};
  int orientation = 1;
  if (!jpeg_decode_raw(data, size, err, cinfo, jpeg_alloc, &ctx, &orientation)) {
    if (!ctx.error.empty()) throw Error(ctx.error);
    fail(name, std::string("JPEG: ") + err.message);
  }
  return apply_orientation(img, orientation);
}

// ---- GIF (giflib; first frame on the logical screen) ----
struct GifReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};
int gif_read(GifFileType* gif, GifByteType* buf, int n) {
  auto* r = static_cast<GifReader*>(gif->UserData);
  const size_t k = std::min(size_t(n < 0 ? 0 : n), r->size - r->pos);
  std::memcpy(buf, r->data + r->pos, k);
  r->pos += k;
  return int(k);
}

Image decode_gif(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  GifReader reader{data, size, 0};
  int error = 0;
  GifFileType* gif = DGifOpen(&reader, gif_read, &error);
  if (!gif) fail(name, std::string("GIF: ") + GifErrorString(error));
  struct Guard {
    GifFileType* g;
    ~Guard() {
      int e;
      DGifCloseFile(g, &e);
    }
  } guard{gif};
  auto gif_fail = [&](const char* what) {
    const char* msg = GifErrorString(gif->Error);
    fail(name, std::string("GIF: ") + what + (msg ? std::string(": ") + msg : std::string()));
  };
  check_size(name, gif->SWidth, gif->SHeight, limits);
  int transparent = -1;
  GifRecordType type;
  do {
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) gif_fail("bad record");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) gif_fail("bad extension");
      while (ext) {
        if (code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4 && (ext[1] & 1)) transparent = ext[4];
        if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) gif_fail("bad extension");
      }
    } else if (type == IMAGE_DESC_RECORD_TYPE) {
      if (DGifGetImageDesc(gif) == GIF_ERROR) gif_fail("bad image descriptor");
      const GifImageDesc& d = gif->Image;
      const ColorMapObject* cmap = d.ColorMap ? d.ColorMap : gif->SColorMap;
      if (!cmap) fail(name, "GIF: no colour map");
      if (d.Width <= 0 || d.Height <= 0 || d.Left < 0 || d.Top < 0 ||
          int64_t(d.Left) + d.Width > gif->SWidth || int64_t(d.Top) + d.Height > gif->SHeight) {
        fail(name, "GIF: first frame lies outside the logical screen");
      }
      const int W = gif->SWidth, H = gif->SHeight;
      // Outside the frame: transparent when the frame has a transparent index, else background.
      std::vector<uint8_t> rgba(size_t(W) * H * 4, 0);
      if (transparent < 0) {
        const int bg = gif->SBackGroundColor < cmap->ColorCount ? gif->SBackGroundColor : 0;
        for (size_t i = 0; i < size_t(W) * H; ++i) {
          rgba[i * 4 + 0] = cmap->Colors[bg].Red;
          rgba[i * 4 + 1] = cmap->Colors[bg].Green;
          rgba[i * 4 + 2] = cmap->Colors[bg].Blue;
          rgba[i * 4 + 3] = 255;
        }
      }
      std::vector<GifPixelType> line(size_t(d.Width));
      std::vector<int> rows;
      if (d.Interlace) {
        for (int start : {0, 4, 2, 1}) {
          const int step = start == 0 ? 8 : start == 4 ? 8 : start == 2 ? 4 : 2;
          for (int y = start; y < d.Height; y += step) rows.push_back(y);
        }
      } else {
        for (int y = 0; y < d.Height; ++y) rows.push_back(y);
      }
      for (int y : rows) {
        if (DGifGetLine(gif, line.data(), d.Width) == GIF_ERROR) gif_fail("truncated image data");
        uint8_t* out = &rgba[(size_t(d.Top + y) * W + d.Left) * 4];
        for (int x = 0; x < d.Width; ++x) {
          const int idx = line[size_t(x)];
          if (idx == transparent) {
            std::memset(out + x * 4, 0, 4);
          } else if (idx < cmap->ColorCount) {
            out[x * 4 + 0] = cmap->Colors[idx].Red;
            out[x * 4 + 1] = cmap->Colors[idx].Green;
            out[x * 4 + 2] = cmap->Colors[idx].Blue;
            out[x * 4 + 3] = 255;
          }
        }
      }
      return from_rgba(W, H, rgba.data());
    }
  } while (type != TERMINATE_RECORD_TYPE);
  fail(name, "GIF: no image in file");
}

// ---- WebP ----
Image decode_webp(const uint8_t* data, size_t size, const std::string& name,
                  const ImageLimits& limits) {
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(data, size, &f) != VP8_STATUS_OK) fail(name, "WebP: invalid header");
  check_size(name, f.width, f.height, limits);
  std::vector<uint8_t> rgba(size_t(f.width) * size_t(f.height) * 4);
  if (!WebPDecodeRGBAInto(data, size, rgba.data(), rgba.size(), f.width * 4)) {
    fail(name, "WebP: corrupt or truncated image data");
  }
  return from_rgba(f.width, f.height, rgba.data());
}

// ---- BMP (own code: 1/4/8-bit palette, 16/24/32-bit, uncompressed or bitfields) ----
uint32_t le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24);
}
uint16_t le16(const uint8_t* p) {
  return uint16_t(p[0] | (p[1] << 8));
}

Image decode_bmp(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  if (size < 54) fail(name, "BMP: truncated header");
  const uint32_t pixel_offset = le32(data + 10);
  const uint32_t header_size = le32(data + 14);
  if (header_size < 40 || 14 + uint64_t(header_size) > size) {
    fail(name, "BMP: unsupported info header of " + std::to_string(header_size) + " bytes");
  }
  const int32_t w = int32_t(le32(data + 18));
  const int32_t h_raw = int32_t(le32(data + 22));
  const uint16_t bpp = le16(data + 28);
  const uint32_t compression = le32(data + 30);
  const bool top_down = h_raw < 0;
  const int64_t h = top_down ? -int64_t(h_raw) : int64_t(h_raw);
  check_size(name, w, h, limits);
  uint32_t masks[4] = {0, 0, 0, 0};
  if (compression == 3 || compression == 6) {  // BI_BITFIELDS / BI_ALPHABITFIELDS
    const size_t mask_at = header_size >= 52 ? 54 : 14 + header_size;
    if (mask_at + 12 > size) fail(name, "BMP: truncated bit masks");
    for (int i = 0; i < 3; ++i) masks[i] = le32(data + mask_at + i * 4);
    if (header_size >= 56 || compression == 6) masks[3] = le32(data + 54 + 12);
  } else if (compression != 0) {
    fail(name, "BMP: compression " + std::to_string(compression) + " is not supported");
  } else if (bpp == 16) {
    masks[0] = 0x7C00, masks[1] = 0x03E0, masks[2] = 0x001F;
  } else if (bpp == 32) {
    masks[0] = 0xFF0000, masks[1] = 0xFF00, masks[2] = 0xFF;
  }
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
    fail(name, "BMP: " + std::to_string(bpp) + " bits per pixel is not supported");
  }
  std::vector<uint8_t> palette;  // BGRA quads
  if (bpp <= 8) {
    uint32_t n = le32(data + 46);
    if (n == 0 || n > (1u << bpp)) n = 1u << bpp;
    const uint64_t at = 14 + uint64_t(header_size);
    if (at + uint64_t(n) * 4 > size) fail(name, "BMP: truncated palette");
    palette.assign(data + at, data + at + n * 4);
  }
  const uint64_t stride = ((uint64_t(w) * bpp + 31) / 32) * 4;
  if (pixel_offset > size || stride * uint64_t(h) > size - pixel_offset) {
    fail(name, "BMP: pixel data truncated (" + std::to_string(size) + " bytes)");
  }
  auto channel = [](uint32_t v, uint32_t mask) -> uint8_t {
    if (!mask) return 0;
    int shift = 0;
    while (!((mask >> shift) & 1)) ++shift;
    const uint32_t max = mask >> shift;
    return uint8_t(((v & mask) >> shift) * 255 / max);
  };
  std::vector<uint8_t> rgba(size_t(w) * size_t(h) * 4);
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = data + pixel_offset + stride * uint64_t(top_down ? y : h - 1 - y);
    uint8_t* out = &rgba[size_t(y) * size_t(w) * 4];
    for (int32_t x = 0; x < w; ++x) {
      uint8_t* px = out + size_t(x) * 4;
      px[3] = 255;
      if (bpp <= 8) {
        const int bit = x * bpp;
        const uint32_t idx = (row[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
        if (idx * 4 >= palette.size()) fail(name, "BMP: palette index out of range");
        px[0] = palette[idx * 4 + 2], px[1] = palette[idx * 4 + 1], px[2] = palette[idx * 4 + 0];
      } else if (bpp == 24) {
        px[0] = row[x * 3 + 2], px[1] = row[x * 3 + 1], px[2] = row[x * 3 + 0];
      } else {
        const uint32_t v = bpp == 16 ? le16(row + x * 2) : le32(row + x * 4);
        for (int c = 0; c < 3; ++c) px[c] = channel(v, masks[c]);
        if (masks[3]) px[3] = channel(v, masks[3]);
      }
    }
  }
  return from_rgba(w, int(h), rgba.data());
}

// ---- PPM / PGM (P2, P3, P5, P6; maxval up to 65535, scaled to 8 bits) ----
Image decode_pnm(const uint8_t* data, size_t size, const std::string& name,
                 const ImageLimits& limits) {
  size_t pos = 2;
  auto next_int = [&](const char* what) -> int64_t {
    while (pos < size) {
      if (data[pos] == '#') {
        while (pos < size && data[pos] != '\n') ++pos;
      } else if (std::isspace(data[pos])) {
        ++pos;
      } else {
        break;
      }
    }
    if (pos >= size || !std::isdigit(data[pos])) fail(name, std::string("PNM: bad ") + what);
    int64_t v = 0;
    while (pos < size && std::isdigit(data[pos])) {
      v = v * 10 + (data[pos++] - '0');
      if (v > (int64_t(1) << 31)) fail(name, std::string("PNM: ") + what + " too large");
    }
    return v;
  };
  const char kind = char(data[1]);
  const bool gray = kind == '2' || kind == '5';
  const bool ascii = kind == '2' || kind == '3';
  const int64_t w = next_int("width"), h = next_int("height"), maxval = next_int("maxval");
  if (maxval < 1 || maxval > 65535) fail(name, "PNM: maxval " + std::to_string(maxval));
  check_size(name, w, h, limits);
  const int ch = gray ? 1 : 3;
  const size_t n = size_t(w) * size_t(h) * ch;
  const int bytes = maxval > 255 ? 2 : 1;
  if (!ascii) {
    ++pos;  // the single whitespace after maxval
    if (pos > size || (size - pos) / bytes < n) fail(name, "PNM: pixel data truncated");
  }
  Image img{int(w), int(h), std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
  for (size_t i = 0; i < n; ++i) {
    int64_t v;
    if (ascii) {
      v = next_int("sample");
    } else {
      v = bytes == 2 ? (data[pos] << 8) | data[pos + 1] : data[pos];
      pos += bytes;
    }
    v = std::min(v, maxval);
    const uint8_t u = uint8_t((v * 255 + maxval / 2) / maxval);
    if (gray) {
      std::memset(&img.rgb[i * 3], u, 3);
    } else {
      img.rgb[i] = u;
    }
  }
  return img;
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits) {
  auto starts = [&](const char* magic, size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
  };
  if (size == 0) fail(name, "empty file");
  if (starts("\x89PNG\r\n\x1a\n", 8)) return decode_png(data, size, name, limits);
  if (starts("\xff\xd8\xff", 3)) return decode_jpeg(data, size, name, limits);
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return decode_gif(data, size, name, limits);
  if (size >= 12 && starts("RIFF", 4) && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return decode_webp(data, size, name, limits);
  }
  if (starts("BM", 2)) return decode_bmp(data, size, name, limits);
  if (size >= 3 && data[0] == 'P' &&
      (data[1] == '2' || data[1] == '3' || data[1] == '5' || data[1] == '6')) {
    return decode_pnm(data, size, name, limits);
  }
  fail(name, "not a supported image (PNG, JPEG, GIF, WebP, BMP, PPM/PGM)");
}

Image apply_exif_orientation(const Image& image, int orientation) {
  return apply_orientation(image, orientation);
}

Image load_image(const std::string& path, const ImageLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open image file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  return decode_image(bytes.data(), bytes.size(), path, limits);
}

}  // namespace ug::media
