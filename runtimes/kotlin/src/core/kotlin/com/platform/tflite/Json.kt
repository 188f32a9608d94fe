package com.platform.tflite

/**
 * A small JSON reader for metadata.json (no JSON library ships with Android's and Debian's Kotlin alike).
 *
 * Values come back as Map<String, Any?>, List<Any?>, String, Double (every number), Boolean or null.
 * Malformed text raises [MetadataException] with the character offset.
 */
object Json {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        if (!reader.atEnd()) throw reader.fail("unexpected text after the JSON value")
        return value
    }

    private class Reader(private val text: String) {
        private var pos = 0

        fun atEnd() = pos >= text.length

        fun fail(problem: String) = MetadataException("invalid JSON at character $pos: $problem")

        fun skipSpace() {
            while (pos < text.length && text[pos].isWhitespace()) pos++
        }

        fun value(): Any? {
            skipSpace()
            if (atEnd()) throw fail("unexpected end of text")
            return when (val c = text[pos]) {
                '{' -> obj()
                '[' -> array()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c.isDigit()) number() else throw fail("unexpected character '$c'")
            }
        }

        private fun literal(word: String, result: Any?): Any? {
            if (!text.startsWith(word, pos)) throw fail("expected $word")
            pos += word.length
            return result
        }

        private fun expect(c: Char) {
            skipSpace()
            if (atEnd() || text[pos] != c) throw fail("expected '$c'")
            pos++
        }

        private fun obj(): Map<String, Any?> {
            val result = LinkedHashMap<String, Any?>()
            expect('{')
            skipSpace()
            if (!atEnd() && text[pos] == '}') { pos++; return result }
            while (true) {
                skipSpace()
                if (atEnd() || text[pos] != '"') throw fail("expected a string key")
                val key = string()
                expect(':')
                result[key] = value()
                skipSpace()
                if (atEnd()) throw fail("unterminated object")
                if (text[pos] == ',') { pos++; continue }
                if (text[pos] == '}') { pos++; return result }
                throw fail("expected ',' or '}'")
            }
        }

        private fun array(): List<Any?> {
            val result = ArrayList<Any?>()
            expect('[')
            skipSpace()
            if (!atEnd() && text[pos] == ']') { pos++; return result }
            while (true) {
                result.add(value())
                skipSpace()
                if (atEnd()) throw fail("unterminated array")
                if (text[pos] == ',') { pos++; continue }
                if (text[pos] == ']') { pos++; return result }
                throw fail("expected ',' or ']'")
            }
        }

        private fun string(): String {
            pos++ // opening quote
            val out = StringBuilder()
            while (true) {
                if (atEnd()) throw fail("unterminated string")
                val c = text[pos++]
                when (c) {
                    '"' -> return out.toString()
                    '\\' -> {
                        if (atEnd()) throw fail("unterminated escape")
                        when (val e = text[pos++]) {
                            '"', '\\', '/' -> out.append(e)
                            'b' -> out.append('\b')
                            'f' -> out.append('\u000C')
                            'n' -> out.append('\n')
                            'r' -> out.append('\r')
                            't' -> out.append('\t')
                            'u' -> {
                                if (pos + 4 > text.length) throw fail("short \\u escape")
                                val code = text.substring(pos, pos + 4).toIntOrNull(16) ?: throw fail("bad \\u escape")
                                out.append(code.toChar())
                                pos += 4
                            }
                            else -> throw fail("bad escape '\\$e'")
                        }
                    }
                    else -> out.append(c)
                }
            }
        }

        private fun number(): Double {
            val start = pos
            if (text[pos] == '-') pos++
            while (pos < text.length && (text[pos].isDigit() || text[pos] in ".eE+-")) pos++
            return text.substring(start, pos).toDoubleOrNull() ?: throw fail("bad number '${text.substring(start, pos)}'")
        }
    }
}
