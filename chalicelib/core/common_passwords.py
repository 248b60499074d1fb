"""Passwords attackers try first, refused as new passwords (NIST SP 800-63B, 5.1.1.2: "passwords obtained from
previous breach corpuses, dictionary words, repetitive or sequential characters, context-specific words").

A modest list written from the well-known public top lists (the full breach corpora are not shipped) plus words of
this product's context. It is a Python module rather than a data file so the Lambda bundle carries it. A password
is refused when, lower-cased, it is on the list, or is a listed word with digits and punctuation around it
(``Password2024!``, ``!!dragon99``): those are the first variations a guesser tries.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

_WORDS: Final = """
123456 123456789 12345678 12345 1234567 1234567890 123123 111111 000000 654321 123321 666666 121212 112233 7777777
11111111 1111111111 0000000000 0987654321 9876543210 123qwe 123abc 1q2w3e 1q2w3e4r 1q2w3e4r5t 1qaz2wsx zaq12wsx
zaq1zaq1 qazwsx qazwsxedc qwerty qwerty123 qwertyuiop qwertyui qwert asdfgh asdfghjkl asdf1234 zxcvbn zxcvbnm
1qazxsw2 q1w2e3r4 q1w2e3r4t5 a1b2c3d4 abc123 abcd1234 abcdef abcdefg abcdefgh abcdefghij aaaaaa a1234567
password passw0rd p@ssw0rd p@ssword pa55word pass1234 password1 password12 password123 mypassword newpassword
secret secret123 letmein letmeinnow welcome welcome1 welcome123 iloveyou iloveyou1 ilovegod loveme lovely
monkey dragon master shadow sunshine princess football baseball basketball soccer hockey superman batman spiderman
starwars pokemon michael jennifer jordan23 hunter hunter2 ranger buster tigger charlie thomas robert daniel
jessica ashley bailey freedom whatever trustno1 access flower hello hello123 hellohello killer pepper cheese
summer winter autumn spring computer internet mustang harley corvette ferrari mercedes porsche yankees cowboys
liverpool chelsea arsenal barcelona starwars1 matrix maverick orange banana chocolate cookie cookie123 taylor
andrew joshua george william michelle nicole amanda samantha sophie anthony matthew justin ginger silver golden
diamond snoopy tweety butterfly angel angels purple yellow 987654321 asdfasdf qweqwe qweasd qweasdzxc 1a2b3c4d
zxcvbnm123 azerty azertyuiop qwertz qwertzuiop passwort hallo schatz ficken bonjour soleil motdepasse contrasena
senha123 parola password! admin admin123 admin1234 administrator administrador root toor root123 guest guest123
user user123 test test123 test1234 testing tester demo demo123 default changeme changeme123 changeit letmein1
login login123 system manager support service operator sysadmin webmaster server server123 backup database
oracle mysql postgres postgresql raspberry raspberrypi pi123456 ubuntu debian linux windows windows10 microsoft
apple google facebook twitter instagram linkedin youtube netflix amazon samsung iphone android
mycontroller my-controller mycontroller1 controller mysensors tasmota homeassistant openhab domoticz iot123456
smarthome homeautomation automation gateway sensor sensors firmware dashboard
qwerty1 qwerty12 qwerty1234 qwerty12345 1qaz2wsx3edc 12qwaszx 1234qwer qwer1234 1234asdf asdf1234 zxcv1234
123456a 123456q a123456 a12345678 q123456 aa123456 abc12345 abc123456 password1234 password12345 pass123 pass
trustnoone nothing anything something everything secure security private confidential
letmein! welcome! iloveyou! blink182 charlie1 michael1 jordan jordan1 football1 baseball1 princess1 sunshine1
superman1 batman1 monkey1 dragon1 master1 shadow1 killer1 pepper1 ginger1 soccer1 hockey1 freedom1 flower1
whatever1 computer1 internet1 cheese1 summer1 winter1 spring1 autumn1 starwars2 lovelove loveyou love123
family family1 friends friends1 forever forever1 heaven heaven1 jesus jesus1 christ blessed blessing
zaq123 zaq1xsw2 xsw2zaq1 !qaz2wsx 1qaz!qaz qwe123 qwe1234 asd123 asd1234 zxc123 zxc1234 147258369 159753 159357
741852963 789456123 456789 3141592653 314159 1111 2222 123 12 1234 4321 54321 0123456789 01234567 00000000
88888888 99999999 12341234 11223344 123454321 1234554321 12344321 1357924680 2468013579 password2 password3
iloveu iloveyou2 imissyou sweetheart sweetie babygirl babygurl princesa prince queen king kingkong
letmein2 welcome2 secret1 secret12 master12 master123 shadow12 dragon12 monkey12 hunter12 hunter123
unknown nopassword nopass blank empty none null undefined qwertyqwerty asdfasdfasdf zxczxc zxczxczxc
thunder thunderbird lightning storm tornado hurricane rainbow unicorn phoenix falcon eagle eagles tiger tigers
lion lions panther panthers wolf wolves bear bears shark sharks dolphin dolphins horse horses
"""


@cache
def words() -> frozenset[str]:
    """The list, lower-cased."""
    return frozenset(_WORDS.split())


_AROUND: Final = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*\Z", re.DOTALL)


def is_common(password: str) -> bool:
    """Whether ``password`` is on the list, alone or with only digits and punctuation around a listed word."""
    lowered = password.casefold()
    listed = words()
    if lowered in listed:
        return True
    core = _AROUND.match(lowered)
    stem = core.group(1) if core else ""
    return bool(stem) and stem in listed
