# Writes palettize(1) from the built binary's own help (cmake -P; apps/palettize/CMakeLists.txt
# runs it after each build of the binary): `palettize --help`, then `palettize SUB --help` for each
# subcommand that --help lists. The man page therefore says what the binary says, flag for flag;
# scripts/check-install checks that every flag of every --help is in the installed page.
#
# In: PALETTIZE (the binary), EMULATOR (a cross build's CMAKE_CROSSCOMPILING_EMULATOR, may be
# empty), VERSION, OUT (the .1 file).
#
# CLI11's help layout, which the parser relies on: a section header is a line ending in ':' at
# column 0 ("Options:", "Positionals:", "Subcommands:"); an entry is a line with two leading spaces,
# its name, then two or more spaces and the description; a name too long for the 30-column name
# field puts the description on the next line, indented 30 columns, as are wrapped descriptions.
cmake_minimum_required(VERSION 3.22)

foreach(var PALETTIZE VERSION OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "man_page.cmake: ${var} is not set")
  endif()
endforeach()

# CMake lists are ';'-separated and '[' ']' suspend the separation: the help's own ';', '[' and
# ']' are swapped for markers before the text is split into lines, and back when writing.
function(run_help out_var)
  execute_process(COMMAND ${EMULATOR} "${PALETTIZE}" ${ARGN} --help OUTPUT_VARIABLE text
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man_page.cmake: '${PALETTIZE} ${ARGN} --help' failed (${rc}): ${err}")
  endif()
  # The usage line names the binary as invoked: the man page names the command.
  string(REPLACE "${PALETTIZE}" "palettize" text "${text}")
  string(REPLACE ";" "@SEMI@" text "${text}")
  string(REPLACE "[" "@LB@" text "${text}")
  string(REPLACE "]" "@RB@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(${out_var} "${lines}" PARENT_SCOPE)
endfunction()

# Text to roff: '\' is printed with \e, '-' as \- (an ASCII hyphen-minus, so that a flag copied
# from the page works), a line that would start with a control character is guarded by \&.
function(roff out_var text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  string(REPLACE "@SEMI@" ";" text "${text}")
  string(REPLACE "@LB@" "[" text "${text}")
  string(REPLACE "@RB@" "]" text "${text}")
  if(text MATCHES "^[.']")
    set(text "\\&${text}")
  endif()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

# One help text as man sections: its description paragraphs, its usage, then each section's entries
# as tagged paragraphs (.TP: the name in bold up to its first space, then its description).
function(help_to_roff out_var heading lines)
  set(body "")
  set(entry_name "")
  set(entry_text "")
  set(in_para FALSE)  # consecutive plain lines are one paragraph, filled by the formatter
  macro(flush_entry)
    if(NOT entry_name STREQUAL "")
      string(FIND "${entry_name}" " " sp)
      if(sp EQUAL -1)
        roff(n "${entry_name}")
        set(tag "\\fB${n}\\fR")
      else()
        string(SUBSTRING "${entry_name}" 0 ${sp} head)
        string(SUBSTRING "${entry_name}" ${sp} -1 tail)
        roff(h "${head}")
        roff(t "${tail}")
        set(tag "\\fB${h}\\fR${t}")
      endif()
      roff(d "${entry_text}")
      string(APPEND body ".TP\n${tag}\n${d}\n")
      set(entry_name "")
      set(entry_text "")
    endif()
    set(in_para FALSE)
  endmacro()
  if(NOT heading STREQUAL "")
    string(APPEND body ".SH \"${heading}\"\n")
  endif()
  foreach(line IN LISTS lines)
    if(line MATCHES "^Usage: (.*)$")
      flush_entry()
      roff(u "${CMAKE_MATCH_1}")
      string(APPEND body ".PP\n.B ${u}\n")
    elseif(line MATCHES "^([A-Za-z][A-Za-z ]*):$")
      flush_entry()
      string(APPEND body ".SS ${CMAKE_MATCH_1}\n")
    elseif(line MATCHES "^  ([^ ].*)$")
      flush_entry()
      set(rest "${CMAKE_MATCH_1}")
      if(rest MATCHES "^([^ ]+( [^ ]+)*)  +(.*)$")
        set(entry_name "${CMAKE_MATCH_1}")
        set(entry_text "${CMAKE_MATCH_3}")
      else()
        set(entry_name "${rest}")
      endif()
    elseif(line MATCHES "^                              +(.*)$" AND NOT entry_name STREQUAL "")
      if(entry_text STREQUAL "")
        set(entry_text "${CMAKE_MATCH_1}")
      else()
        string(APPEND entry_text " ${CMAKE_MATCH_1}")
      endif()
    elseif(line STREQUAL "")
      flush_entry()
    else()
      if(NOT in_para)
        flush_entry()
        string(APPEND body ".PP\n")
      endif()
      roff(p "${line}")
      string(APPEND body "${p}\n")
      set(in_para TRUE)
    endif()
  endforeach()
  flush_entry()
  set(${out_var} "${body}" PARENT_SCOPE)
endfunction()

run_help(main)
# NAME: the first line of --help is "palettize: what it does.".
list(GET main 0 first)
list(REMOVE_AT main 0)
string(REGEX REPLACE "^palettize: *" "" summary "${first}")
string(REGEX REPLACE "\\.$" "" summary "${summary}")
roff(summary "${summary}")

# The subcommands: the names in the Subcommands section of --help.
set(subcommands "")
set(in_subcommands FALSE)
foreach(line IN LISTS main)
  if(line MATCHES "^([A-Za-z][A-Za-z ]*):$")
    set(in_subcommands FALSE)
    if(CMAKE_MATCH_1 STREQUAL "Subcommands")
      set(in_subcommands TRUE)
    endif()
  elseif(in_subcommands AND line MATCHES "^  ([a-z][a-z0-9-]*)  ")
    list(APPEND subcommands "${CMAKE_MATCH_1}")
  elseif(line STREQUAL "")
    set(in_subcommands FALSE)
  endif()
endforeach()
if(NOT subcommands)
  message(FATAL_ERROR "man_page.cmake: no Subcommands section in '${PALETTIZE} --help'")
endif()

set(page ".\\\" Generated from palettize --help by cmake/man_page.cmake; edit the help, not this file.\n")
string(APPEND page ".TH PALETTIZE 1 \"\" \"palettize ${VERSION}\" \"User Commands\"\n")
string(APPEND page ".nh\n")  # no hyphenation: a flag or a file name is never split
string(APPEND page ".SH NAME\npalettize \\- ${summary}\n")
string(APPEND page ".SH SYNOPSIS\n")
foreach(sub IN LISTS subcommands)
  string(APPEND page ".B palettize ${sub}\n[\\fIOPTIONS\\fR]\n.br\n")
endforeach()
help_to_roff(main_roff "DESCRIPTION" "${main}")
string(APPEND page "${main_roff}")
foreach(sub IN LISTS subcommands)
  run_help(sub_lines ${sub})
  string(TOUPPER "${sub}" upper)
  help_to_roff(sub_roff "PALETTIZE ${upper}" "${sub_lines}")
  string(APPEND page "${sub_roff}")
endforeach()
string(APPEND page ".SH \"SEE ALSO\"\nREADME.md (installed in share/doc/palettize) and docs/format.md of the source tree.\n")

# Written only when changed, so that an unchanged help does not re-install the page.
file(WRITE "${OUT}.tmp" "${page}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
