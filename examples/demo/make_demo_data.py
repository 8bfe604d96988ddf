"""Generate relctl's own small multilingual QC/QI demo dataset from a hand-written product catalogue."""

from __future__ import annotations

import argparse
import json
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("es", "fr", "pt", "it", "de", "pl", "ja", "ko", "ar", "en")
# Typos and capitalisation noise only make sense where queries are typed letter by letter.
LATIN_LANGUAGES = ("es", "fr", "pt", "it", "de", "pl", "en")

TRAIN_ROWS = 600
TEST_ROWS = 120
# The share of a query's rows whose target is relevant, before label noise. Queries that name a model or
# a colour are easy to place, so a search engine shows fewer wrong targets for them than for vague ones;
# a "cheap" or a typo makes a query noisier still. These query traits cut across products and category
# groups, as real ones do, so a model that reads the query alone learns something that carries to
# held-out categories (on the real QC sample such a model scores ROC-AUC 0.59 across category groups).
SPECIFIC_POSITIVE_SHARE = 0.85
VAGUE_POSITIVE_SHARE = 0.55
NOISY_QUERY_PENALTY = 0.25
LABEL_NOISE = 0.05
HARD_NEGATIVE_SHARE = 0.5
# A wrong category is most often a near miss: a sibling under the same two top levels (as about a quarter
# of the wrong categories of the real QC sample's queries with mixed labels are), where the catalogue has one.
SIBLING_NEGATIVE_SHARE = 0.4
# A negative QI item for a query naming a model is often the same product made for another model.
OTHER_MODEL_SHARE = 0.4
CHEAP_SHARE = 0.15
TYPO_SHARE = 0.15
CAPITALISED_SHARE = 0.06
# How many rows (targets) one query gets. Real QC data has one row for most queries (1.1 rows per query); a tail of queries with several rows is
# what makes grouped splits matter.
ROWS_PER_QUERY_WEIGHTS = {1: 12, 2: 4, 3: 2, 4: 1, 5: 1}
# Wrong targets are not drawn evenly: a search engine's mistakes pile up on a few popular targets (a
# Zipf law over a seeded order of targets, with this exponent), which real data shows as targets that are
# wrong far more often than others, the signal a model that reads the target alone can pick up.
NEGATIVE_PULL_EXPONENT = 1.0

COLORS = {
    "black": {"es": "negro", "fr": "noir", "pt": "preto", "it": "nero", "de": "schwarz", "pl": "czarny",
              "ja": "黒", "ko": "블랙", "ar": "اسود", "en": "black"},
    "white": {"es": "blanco", "fr": "blanc", "pt": "branco", "it": "bianco", "de": "weiß", "pl": "biały",
              "ja": "白", "ko": "화이트", "ar": "ابيض", "en": "white"},
    "pink": {"es": "rosa", "fr": "rose", "pt": "rosa", "it": "rosa", "de": "rosa", "pl": "różowy",
             "ja": "ピンク", "ko": "핑크", "ar": "وردي", "en": "pink"},
    "blue": {"es": "azul", "fr": "bleu", "pt": "azul", "it": "blu", "de": "blau", "pl": "niebieski",
             "ja": "青", "ko": "블루", "ar": "ازرق", "en": "blue"},
    "red": {"es": "rojo", "fr": "rouge", "pt": "vermelho", "it": "rosso", "de": "rot", "pl": "czerwony",
            "ja": "赤", "ko": "레드", "ar": "احمر", "en": "red"},
    "green": {"es": "verde", "fr": "vert", "pt": "verde", "it": "verde", "de": "grün", "pl": "zielony",
              "ja": "緑", "ko": "그린", "ar": "اخضر", "en": "green"},
}

CHEAP_PATTERNS = {
    "es": "{query} barato", "fr": "{query} pas cher", "pt": "{query} barato", "it": "{query} economico",
    "de": "{query} günstig", "pl": "tanie {query}", "ja": "安い {query}", "ko": "저렴한 {query}",
    "ar": "{query} رخيص", "en": "cheap {query}",
}

# Sellers open many listing titles with one of these; it also keeps one product's titles apart.
LISTING_PREFIXES = ("", "", "", "2024 New ", "Hot Sale ", "Original ", "Free Shipping ")

# Variant fillers are (as typed in a query, as written in a listing title).
PHONE_MODELS = (("iphone 13", "iPhone 13"), ("iphone 15 pro", "iPhone 15 Pro"),
                ("samsung a54", "Samsung A54"), ("redmi note 12", "Redmi Note 12"),
                ("galaxy s23", "Galaxy S23"), ("pixel 7", "Pixel 7"))
CHARGER_POWERS = (("20w", "20W"), ("33w", "33W"), ("65w", "65W"), ("120w", "120W"))
BATTERY_CAPACITIES = (("10000mah", "10000mAh"), ("20000mah", "20000mAh"), ("30000mah", "30000mAh"))
STORAGE_SIZES = (("32gb", "32GB"), ("64gb", "64GB"), ("128gb", "128GB"), ("256gb", "256GB"))
LAPTOP_SIZES = (("13", "13 Inch"), ("14", "14 Inch"), ("15.6", "15.6 Inch"))
CAR_MODELS = (("golf 7", "VW Golf 7"), ("corolla", "Toyota Corolla"), ("bmw e90", "BMW E90"),
              ("clio 4", "Renault Clio 4"), ("hyundai tucson", "Hyundai Tucson"))
BULB_TYPES = (("h4", "H4"), ("h7", "H7"), ("h11", "H11"), ("9005", "9005 HB3"))
REEL_SIZES = (("2000", "2000"), ("3000", "3000"), ("5000", "5000"))
PLUSH_CHARACTERS = (("capybara", "Capybara"), ("stitch", "Stitch"), ("kuromi", "Kuromi"),
                    ("axolotl", "Axolotl"))
WATCH_MODELS = (("apple watch", "Apple Watch"), ("galaxy watch 6", "Samsung Galaxy Watch 6"),
                ("mi band 8", "Xiaomi Mi Band 8"), ("huawei watch gt 4", "Huawei Watch GT 4"))
CLOTHING_SIZES = ("s", "m", "l", "xl", "xxl")
WOMEN_SHOE_SIZES = ("36", "37", "38", "39", "40")
MEN_SHOE_SIZES = ("41", "42", "43", "44", "45")
TENT_PERSONS = ("2", "3", "4")
RING_SIZES = ("6", "7", "8", "9")

# Level names may contain ", " themselves, so levels are split on a comma not followed by a space.
LEVEL_SEPARATOR = re.compile(r",(?! )")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class QueryTemplate:
    """A query pattern in one language and its English rendering, with {model}/{size}/{color} slots."""

    native: str
    english: str


@dataclass(frozen=True)
class Product:
    """One kind of product: the category paths it is listed under, how it is searched for, its titles.

    ``models`` are variants a listing is made for (a phone model, a bulb socket): an item for another
    variant is not relevant. ``sizes`` are only typed in queries and never decide relevance.
    """

    key: str
    paths: tuple[str, ...]
    queries: dict[str, tuple[QueryTemplate, ...]]
    titles: tuple[str, ...]
    models: tuple[tuple[str, str], ...] = ()
    sizes: tuple[str, ...] = ()

    @property
    def top_level(self) -> str:
        return category_levels(self.paths[0])[0]


def category_levels(path: str) -> tuple[str, ...]:
    return tuple(LEVEL_SEPARATOR.split(path))


def query_templates(table: str) -> dict[str, tuple[QueryTemplate, ...]]:
    """Parse lines ``lang: native = english | native = english`` (English lines give the query alone)."""
    templates: dict[str, tuple[QueryTemplate, ...]] = {}
    for line in table.strip().splitlines():
        language, _, alternatives = line.strip().partition(": ")
        parsed = []
        for alternative in alternatives.split(" | "):
            native, _, english = alternative.partition(" = ")
            if language != "en" and not english:
                raise ValueError(f"{language} template {native!r} has no English rendering")
            parsed.append(QueryTemplate(native.strip(), (english or native).strip()))
        templates[language] = tuple(parsed)
    if sorted(templates) != sorted(LANGUAGES):
        raise ValueError(f"templates cover {sorted(templates)}, expected {sorted(LANGUAGES)}")
    return templates


CATALOGUE = (
    Product(
        key="phone_case",
        paths=("phones & telecommunications,mobile phone accessories,mobile phone cases & covers",
               "phones & telecommunications,mobile phone accessories"),
        models=PHONE_MODELS,
        queries=query_templates("""
            en: phone case {model} | {model} case {color} | shockproof phone cover
            es: funda {model} = {model} case | funda movil {color} = {color} phone case | carcasa {model} silicona = {model} silicone case
            fr: coque {model} = {model} case | coque téléphone {color} = {color} phone case
            pt: capinha {model} = {model} case | capa de celular {color} = {color} phone case
            it: cover {model} = {model} case | custodia cellulare {color} = {color} phone case
            de: Handyhülle {model} = {model} phone case | hülle {model} {color} = {color} {model} case
            pl: etui {model} = {model} case | etui na telefon {color} = {color} phone case
            ja: スマホケース {model} = {model} phone case | {model} ケース 手帳型 = {model} wallet case
            ko: {model} 케이스 = {model} case | 휴대폰 케이스 {color} = {color} phone case
            ar: جراب {model} = {model} case | جراب موبايل {color} = {color} phone case
        """),
        titles=("Shockproof Silicone Case For {model} Soft TPU Back Cover {color}",
                "Luxury Leather Wallet Flip Case for {model} Card Holder Stand Cover",
                "Transparent Clear Phone Case For {model} Camera Protection Bumper"),
    ),
    Product(
        key="screen_protector",
        paths=("phones & telecommunications,mobile phone accessories,screen protectors",
               "phones & telecommunications,mobile phone accessories"),
        models=PHONE_MODELS,
        queries=query_templates("""
            en: screen protector {model} | tempered glass {model}
            es: protector pantalla {model} = {model} screen protector | cristal templado {model} = {model} tempered glass
            fr: verre trempé {model} = {model} tempered glass | protection écran {model} = {model} screen protector
            pt: película {model} = {model} screen protector | pelicula de vidro {model} = {model} glass screen protector
            it: pellicola {model} = {model} screen protector | vetro temperato {model} = {model} tempered glass
            de: Panzerglas {model} = {model} tempered glass | schutzfolie {model} = {model} screen protector
            pl: szkło hartowane {model} = {model} tempered glass | folia ochronna {model} = {model} screen protector film
            ja: {model} ガラスフィルム = {model} glass screen protector | 保護フィルム {model} = {model} screen protector film
            ko: {model} 강화유리 필름 = {model} tempered glass film | 액정 보호 필름 = screen protector film
            ar: واقي شاشة {model} = {model} screen protector | اسكرينة {model} = {model} screen protector
        """),
        titles=("9H Tempered Glass Screen Protector For {model} Full Cover Protective Film",
                "3PCS Privacy Anti-Spy Glass for {model} Screen Protector",
                "Hydrogel Film For {model} Full Curved Screen Protector Not Glass"),
    ),
    Product(
        key="phone_charger",
        paths=("phones & telecommunications,mobile phone accessories,mobile phone chargers",
               "consumer electronics,power source,chargers"),
        models=CHARGER_POWERS,
        queries=query_templates("""
            en: fast charger {model} | usb c charger
            es: cargador rapido {model} = {model} fast charger | cargador usb c = usb c charger
            fr: chargeur rapide {model} = {model} fast charger | chargeur usb c = usb c charger
            pt: carregador turbo {model} = {model} turbo charger | carregador tipo c = type c charger
            it: caricabatterie {model} = {model} charger | caricatore usb c = usb c charger
            de: Schnellladegerät {model} = {model} fast charger | ladegerät usb c = usb c charger
            pl: ładowarka {model} = {model} charger | szybka ładowarka usb c = usb c fast charger
            ja: 急速充電器 {model} = {model} fast charger | type-c 充電器 = type-c charger
            ko: 고속 충전기 {model} = {model} fast charger | c타입 충전기 = type c charger
            ar: شاحن سريع {model} = {model} fast charger | شاحن تايب سي = type c charger
        """),
        titles=("{model} USB C Fast Charger PD Quick Charge 3.0 Wall Adapter EU Plug",
                "GaN {model} Charger Type C Fast Charging For iPhone Samsung Xiaomi",
                "{model} Super Fast Charger With 1M Cable Travel Adapter"),
    ),
    Product(
        key="smartphone",
        paths=("phones & telecommunications,mobile phones",),
        models=PHONE_MODELS,
        queries=query_templates("""
            en: {model} | {model} smartphone {color}
            es: movil {model} libre = unlocked {model} phone | telefono {model} = {model} phone
            fr: smartphone {model} = {model} smartphone | téléphone portable débloqué = unlocked mobile phone
            pt: celular {model} = {model} phone | smartphone {model} 128gb = {model} 128gb smartphone
            it: cellulare {model} = {model} phone | smartphone {model} nuovo = new {model} smartphone
            de: handy {model} = {model} phone | smartphone {model} 256gb = {model} 256gb smartphone
            pl: telefon {model} = {model} phone | smartfon {model} = {model} smartphone
            ja: {model} 本体 = {model} handset | SIMフリー {model} = unlocked {model}
            ko: {model} 자급제 = unlocked {model} | 스마트폰 {model} = {model} smartphone
            ar: موبايل {model} = {model} mobile phone | جوال {model} = {model} phone
        """),
        titles=("{model} Smartphone 8GB 256GB Global Version 5G Mobile Phone {color}",
                "{model} 6.7 Inch AMOLED Display 5000mAh Cell Phone Unlocked",
                "Global Version {model} 128GB Dual SIM Mobile Phone"),
    ),
    Product(
        key="wireless_earbuds",
        paths=("consumer electronics,earphones & headphones,bluetooth earphones & headphones",
               "consumer electronics,earphones & headphones"),
        queries=query_templates("""
            en: wireless earbuds | bluetooth headphones {color}
            es: auriculares bluetooth = bluetooth headphones | cascos inalambricos {color} = {color} wireless headphones
            fr: écouteurs bluetooth = bluetooth earphones | écouteurs sans fil {color} = {color} wireless earphones
            pt: fone de ouvido bluetooth = bluetooth headphones | fone sem fio tipo airpods = airpods style wireless earphones
            it: auricolari bluetooth = bluetooth earphones | cuffie wireless {color} = {color} wireless headphones
            de: bluetooth kopfhörer = bluetooth headphones | kabellose ohrhörer {color} = {color} wireless earbuds
            pl: słuchawki bezprzewodowe = wireless headphones | słuchawki douszne bluetooth = bluetooth in-ear earphones
            ja: ワイヤレスイヤホン = wireless earphones | bluetooth イヤホン {color} = {color} bluetooth earphones
            ko: 블루투스 이어폰 = bluetooth earphones | 무선 이어폰 {color} = {color} wireless earphones
            ar: سماعات بلوتوث = bluetooth headphones | سماعة لاسلكية {color} = {color} wireless earphone
        """),
        titles=("TWS Wireless Bluetooth 5.3 Earbuds Noise Cancelling Headphones With Mic {color}",
                "Air Pro Earphones Wireless Earbuds Touch Control Sports Headset",
                "Bone Conduction Open Ear Bluetooth Headphones Waterproof {color}"),
    ),
    Product(
        key="power_bank",
        paths=("consumer electronics,power source,power bank",
               "phones & telecommunications,mobile phone accessories,power bank"),
        models=BATTERY_CAPACITIES,
        queries=query_templates("""
            en: power bank {model} | portable charger {model}
            es: bateria externa {model} = {model} power bank | powerbank {model} carga rapida = fast charging {model} power bank
            fr: batterie externe {model} = {model} power bank | batterie portable charge rapide = fast charging portable battery
            pt: carregador portátil {model} = {model} portable charger | power bank magnético = magnetic power bank
            it: batteria esterna {model} = {model} power bank | caricatore portatile = portable charger
            de: powerbank {model} = {model} power bank | externer akku {model} = {model} external battery
            pl: power bank do telefonu {model} = {model} phone power bank | bateria zewnętrzna = external battery
            ja: モバイルバッテリー {model} = {model} power bank | モバイルバッテリー 大容量 = high capacity power bank
            ko: 보조배터리 {model} = {model} power bank | 고속충전 보조배터리 = fast charging power bank
            ar: باور بانك {model} = {model} power bank | شاحن متنقل = portable charger
        """),
        titles=("{model} Power Bank 22.5W Fast Charging Portable Charger With LED Display",
                "Magnetic Wireless Power Bank {model} For iPhone External Battery {color}",
                "Mini {model} Powerbank Built-in Cables USB C Portable Battery"),
    ),
    Product(
        key="smartwatch",
        paths=("consumer electronics,smart electronics,wearable devices,smart watches",
               "watches,smart watches"),
        queries=query_templates("""
            en: smart watch {color} | smartwatch for women
            es: reloj inteligente = smart watch | smartwatch mujer {color} = {color} women's smartwatch
            fr: montre connectée = smart watch | montre connectée femme {color} = {color} women's smart watch
            pt: relógio inteligente = smart watch | smartwatch feminino {color} = {color} women's smartwatch
            it: smartwatch donna = women's smartwatch | orologio smart {color} = {color} smart watch
            de: smartwatch damen = women's smartwatch | fitness uhr {color} = {color} fitness watch
            pl: smartwatch damski = women's smartwatch | zegarek smart {color} = {color} smart watch
            ja: スマートウォッチ = smartwatch | スマートウォッチ レディース {color} = {color} women's smartwatch
            ko: 스마트워치 = smartwatch | 스마트 워치 여성용 = women's smart watch
            ar: ساعة ذكية = smart watch | ساعة سمارت {color} = {color} smart watch
        """),
        titles=("Smart Watch Women Men 1.96 Inch AMOLED Bluetooth Call Fitness Tracker {color}",
                "Smartwatch Heart Rate Blood Oxygen Monitor Waterproof Sports Watch",
                "Ladies Smart Watch Bracelet Sleep Monitor For Android iOS {color}"),
    ),
    Product(
        key="bluetooth_speaker",
        paths=("consumer electronics,portable audio & video,speakers,portable speakers",
               "consumer electronics,portable audio & video,speakers"),
        queries=query_templates("""
            en: bluetooth speaker | portable speaker waterproof
            es: altavoz bluetooth = bluetooth speaker | bocina portatil {color} = {color} portable speaker
            fr: enceinte bluetooth = bluetooth speaker | enceinte portable étanche = waterproof portable speaker
            pt: caixa de som bluetooth = bluetooth speaker | caixinha de som portátil {color} = {color} portable speaker
            it: cassa bluetooth = bluetooth speaker | altoparlante portatile = portable speaker
            de: bluetooth lautsprecher = bluetooth speaker | musikbox wasserdicht = waterproof music box speaker
            pl: głośnik bluetooth = bluetooth speaker | przenośny głośnik {color} = {color} portable speaker
            ja: bluetooth スピーカー = bluetooth speaker | 防水 スピーカー = waterproof speaker
            ko: 블루투스 스피커 = bluetooth speaker | 휴대용 스피커 {color} = {color} portable speaker
            ar: سماعة بلوتوث كبيرة = large bluetooth speaker | مكبر صوت محمول = portable speaker
        """),
        titles=("Portable Bluetooth Speaker Wireless Bass Column Waterproof Outdoor Loudspeaker {color}",
                "40W Powerful Bluetooth Speaker Subwoofer With RGB Light TF Card FM Radio",
                "Mini Wireless Speaker Shower Waterproof IPX7 Stereo Sound {color}"),
    ),
    Product(
        key="gaming_mouse",
        paths=("computer & office,mouse & keyboards,mice", "computer & office,mouse & keyboards"),
        queries=query_templates("""
            en: gaming mouse | wireless mouse {color}
            es: raton gaming = gaming mouse | mouse inalambrico {color} = {color} wireless mouse
            fr: souris gamer = gaming mouse | souris sans fil {color} = {color} wireless mouse
            pt: mouse gamer = gaming mouse | mouse sem fio {color} = {color} wireless mouse
            it: mouse da gaming = gaming mouse | mouse wireless {color} = {color} wireless mouse
            de: gaming maus = gaming mouse | kabellose maus {color} = {color} wireless mouse
            pl: myszka gamingowa = gaming mouse | mysz bezprzewodowa {color} = {color} wireless mouse
            ja: ゲーミングマウス = gaming mouse | ワイヤレスマウス 静音 = silent wireless mouse
            ko: 게이밍 마우스 = gaming mouse | 무선 마우스 {color} = {color} wireless mouse
            ar: ماوس جيمنج = gaming mouse | ماوس لاسلكي {color} = {color} wireless mouse
        """),
        titles=("Wireless Gaming Mouse 2.4G Rechargeable RGB 4000 DPI Silent Mice For Laptop {color}",
                "Wired Gaming Mouse 7 Buttons LED Backlit Ergonomic Mouse Gamer",
                "Bluetooth Wireless Mouse Ultra Thin Silent Click For MacBook iPad {color}"),
    ),
    Product(
        key="mechanical_keyboard",
        paths=("computer & office,mouse & keyboards,keyboards", "computer & office,mouse & keyboards"),
        queries=query_templates("""
            en: mechanical keyboard | gaming keyboard rgb
            es: teclado mecanico = mechanical keyboard | teclado gamer rgb = rgb gaming keyboard
            fr: clavier mécanique = mechanical keyboard | clavier gamer azerty = azerty gaming keyboard
            pt: teclado mecânico = mechanical keyboard | teclado gamer {color} = {color} gaming keyboard
            it: tastiera meccanica = mechanical keyboard | tastiera gaming rgb = rgb gaming keyboard
            de: mechanische tastatur = mechanical keyboard | gaming tastatur qwertz = qwertz gaming keyboard
            pl: klawiatura mechaniczna = mechanical keyboard | klawiatura gamingowa rgb = rgb gaming keyboard
            ja: メカニカルキーボード = mechanical keyboard | 無線 キーボード {color} = {color} wireless keyboard
            ko: 기계식 키보드 = mechanical keyboard | 무선 키보드 {color} = {color} wireless keyboard
            ar: كيبورد ميكانيكي = mechanical keyboard | لوحة مفاتيح عربي = arabic keyboard
        """),
        titles=("Mechanical Gaming Keyboard 87 Keys Hot Swappable RGB Backlit Blue Switch {color}",
                "Wireless Mechanical Keyboard 2.4G Bluetooth Tri-Mode 75% Layout Gasket",
                "Slim Wireless Keyboard Silent Keys For Windows Mac Tablet {color}"),
    ),
    Product(
        key="usb_flash_drive",
        paths=("computer & office,external storage,usb flash drives",),
        models=STORAGE_SIZES,
        queries=query_templates("""
            en: usb flash drive {model} | usb stick {model}
            es: memoria usb {model} = {model} usb memory | pendrive {model} metalico = {model} metal usb stick
            fr: clé usb {model} = {model} usb key
            pt: pen drive {model} = {model} pen drive | pendrive {model} = {model} usb stick
            it: chiavetta usb {model} = {model} usb stick
            de: usb-stick {model} = {model} usb stick | speicherstick {model} = {model} memory stick
            pl: pamięć usb {model} = {model} usb memory | pendrive {model} szybki = fast {model} usb stick
            ja: usbメモリ {model} = {model} usb memory
            ko: usb 메모리 {model} = {model} usb memory | 대용량 usb = high capacity usb drive
            ar: فلاشة {model} = {model} flash drive | فلاش ميموري {model} = {model} flash memory
        """),
        titles=("USB Flash Drive {model} Metal Pen Drive High Speed USB 3.0 Memory Stick",
                "Mini {model} Pendrive Waterproof U Disk Key Chain {color}",
                "2 In 1 OTG USB C Flash Drive {model} For Phone And PC"),
    ),
    Product(
        key="laptop_bag",
        paths=("computer & office,laptop accessories,laptop bags & cases", "luggage & bags,laptop bags"),
        models=LAPTOP_SIZES,
        queries=query_templates("""
            en: laptop bag {model} inch | laptop sleeve {model}
            es: funda portatil {model} pulgadas = {model} inch laptop sleeve | maletin para portatil = laptop briefcase
            fr: sacoche ordinateur portable = laptop bag | housse pc portable {model} pouces = {model} inch laptop sleeve
            pt: mochila para notebook = laptop backpack | capa notebook {model} polegadas = {model} inch laptop case
            it: borsa porta pc = laptop bag | custodia notebook {model} pollici = {model} inch laptop case
            de: laptoptasche {model} zoll = {model} inch laptop bag | notebook hülle = notebook sleeve
            pl: torba na laptopa {model} cali = {model} inch laptop bag | etui na laptopa = laptop sleeve
            ja: ノートパソコン ケース {model}インチ = {model} inch laptop case | pc バッグ = pc bag
            ko: 노트북 파우치 {model}인치 = {model} inch laptop pouch | 노트북 가방 = laptop bag
            ar: شنطة لابتوب {model} بوصة = {model} inch laptop bag | حقيبة لابتوب = laptop bag
        """),
        titles=("Laptop Sleeve Bag {model} Waterproof Notebook Case For MacBook Air Pro {color}",
                "{model} Laptop Shoulder Bag Briefcase Business Handbag For Men Women",
                "Shockproof Laptop Case {model} Computer Cover With Handle {color}"),
    ),
    Product(
        key="summer_dress",
        paths=("women's clothing,dresses", "women's clothing,dresses,beach dresses"),
        sizes=CLOTHING_SIZES,
        queries=query_templates("""
            en: summer dress {color} | floral maxi dress
            es: vestido de verano {color} = {color} summer dress | vestido largo mujer = long dress for women
            fr: robe d'été {color} = {color} summer dress | robe longue femme = long dress for women
            pt: vestido longo = long dress | vestido de verão {color} = {color} summer dress
            it: vestito estivo donna = women's summer dress | abito lungo {color} = {color} long dress
            de: sommerkleid damen = women's summer dress | kleid {color} {size} = {color} dress size {size}
            pl: sukienka letnia {color} = {color} summer dress | sukienka maxi w kwiaty = floral maxi dress
            ja: ワンピース 夏 = summer dress | ロングワンピース {color} = {color} long dress
            ko: 여름 원피스 = summer dress | 롱 원피스 {color} = {color} long dress
            ar: فستان صيفي = summer dress | فستان طويل {color} = {color} long dress
        """),
        titles=("Women Summer Dress Floral Print V-Neck Short Sleeve Casual Beach Sundress {color}",
                "Elegant Maxi Dress Women Sleeveless Boho Long Dress",
                "Sexy Bodycon Mini Dress Party Club Dresses For Women {color}"),
    ),
    Product(
        key="leggings",
        paths=("women's clothing,bottoms,leggings",
               "sports & entertainment,fitness & body building,yoga,yoga pants"),
        queries=query_templates("""
            en: leggings high waist | {color} yoga pants
            es: mallas deportivas mujer = women's sports leggings | leggins {color} = {color} leggings
            fr: legging sport femme = women's sport leggings | legging taille haute {color} = {color} high waist leggings
            pt: legging fitness = fitness leggings | calça legging {color} = {color} leggings pants
            it: leggings sportivi donna = women's sports leggings | leggins push up = push up leggings
            de: sport leggings damen = women's sport leggings | leggings high waist {color} = {color} high waist leggings
            pl: legginsy sportowe = sports leggings | legginsy push up {color} = {color} push up leggings
            ja: レギンス = leggings | ヨガパンツ {color} = {color} yoga pants
            ko: 레깅스 = leggings | 요가 레깅스 {color} = {color} yoga leggings
            ar: ليقنز رياضي = sports leggings | بنطلون يوجا {color} = {color} yoga pants
        """),
        titles=("High Waist Yoga Leggings Women Seamless Push Up Gym Tights {color}",
                "Women Sports Leggings Scrunch Butt Fitness Workout Pants",
                "Fleece Lined Winter Leggings Thermal Warm Pants {color}"),
    ),
    Product(
        key="bikini",
        paths=("women's clothing,swimwear,bikinis", "women's clothing,swimwear"),
        sizes=CLOTHING_SIZES,
        queries=query_templates("""
            en: bikini set {color} | high waisted swimsuit
            es: bikini mujer {color} = {color} bikini for women | traje de baño = swimsuit
            fr: maillot de bain femme = women's swimsuit | bikini {color} = {color} bikini
            pt: biquini {color} = {color} bikini | maiô = one-piece swimsuit
            it: costume da bagno donna = women's swimsuit | bikini brasiliano = brazilian bikini
            de: bikini damen {size} = women's bikini size {size} | badeanzug = swimsuit
            pl: strój kąpielowy = swimsuit | strój kąpielowy dwuczęściowy = two-piece swimsuit
            ja: ビキニ {color} = {color} bikini | 水着 レディース = women's swimwear
            ko: 비키니 = bikini | 여성 수영복 = women's swimsuit
            ar: مايوه بكيني = bikini swimsuit | مايوه حريمي = women's swimsuit
        """),
        titles=("Sexy Bikini Set Women Push Up Swimsuit Two Piece Bathing Suit {color}",
                "High Waist Bikini Brazilian Swimwear Women Beachwear",
                "One Piece Swimsuit Women Tummy Control Monokini {color}"),
    ),
    Product(
        key="blouse",
        paths=("women's clothing,tops & tees,blouses & shirts", "women's clothing,tops & tees"),
        queries=query_templates("""
            en: womens blouse {color} | white shirt women
            es: blusa mujer {color} = {color} women's blouse | camisa blanca mujer = white shirt for women
            fr: chemisier femme = women's blouse | blouse {color} = {color} blouse
            pt: blusa feminina {color} = {color} women's blouse | camisa social feminina = women's dress shirt
            it: camicetta donna = women's blouse | camicia bianca donna = white shirt for women
            de: bluse damen {color} = {color} women's blouse | tunika damen = women's tunic
            pl: bluzka damska {color} = {color} women's blouse | koszula damska = women's shirt
            ja: ブラウス レディース = women's blouse | シャツ 白 レディース = white shirt for women
            ko: 여성 블라우스 = women's blouse | 쉬폰 블라우스 {color} = {color} chiffon blouse
            ar: بلوزة نسائية = women's blouse | قميص حريمي {color} = {color} women's shirt
        """),
        titles=("Women Chiffon Blouse Long Sleeve V-Neck Elegant Office Shirt {color}",
                "Summer Casual Loose Blouse Ladies Tops Short Sleeve",
                "Vintage Lace Blouse Women Button Up Shirt {color}"),
    ),
    Product(
        key="hoodie",
        paths=("men's clothing,hoodies & sweatshirts",),
        sizes=CLOTHING_SIZES,
        queries=query_templates("""
            en: hoodie men {color} | oversized hoodie {size}
            es: sudadera hombre {color} = {color} men's sweatshirt | sudadera con capucha = hooded sweatshirt
            fr: sweat à capuche homme = men's hoodie | hoodie {color} {size} = {color} hoodie size {size}
            pt: moletom masculino = men's hoodie | blusa de frio com capuz = hooded winter sweater
            it: felpa uomo {color} = {color} men's sweatshirt | felpa con cappuccio = hooded sweatshirt
            de: hoodie herren = men's hoodie | kapuzenpullover {color} = {color} hooded pullover
            pl: bluza męska z kapturem = men's hooded sweatshirt | bluza {color} {size} = {color} sweatshirt size {size}
            ja: パーカー メンズ = men's hoodie | パーカー {color} {size} = {color} hoodie size {size}
            ko: 남자 후드티 = men's hoodie | 오버핏 후드티 {color} = {color} oversized hoodie
            ar: هودي رجالي = men's hoodie | سويت شيرت {color} = {color} sweatshirt
        """),
        titles=("Men's Hoodie Oversized Casual Pullover Hooded Sweatshirt Streetwear {color}",
                "Autumn Winter Fleece Hoodies Men Solid Color Sportswear Tops",
                "Zip Up Hoodie Men Jacket Hooded Sweatshirt {color}"),
    ),
    Product(
        key="mens_tshirt",
        paths=("men's clothing,tops & tees,t-shirts", "men's clothing,tops & tees"),
        sizes=CLOTHING_SIZES,
        queries=query_templates("""
            en: mens t shirt {color} | cotton tshirt {size}
            es: camiseta hombre {color} = {color} men's t-shirt | playera algodon = cotton t-shirt
            fr: t-shirt homme {color} = {color} men's t-shirt | tee shirt coton = cotton t-shirt
            pt: camiseta masculina {color} = {color} men's t-shirt | camisa algodão {size} = cotton shirt size {size}
            it: maglietta uomo = men's t-shirt | t-shirt cotone {color} = {color} cotton t-shirt
            de: t-shirt herren {color} = {color} men's t-shirt | tshirt baumwolle = cotton t-shirt
            pl: koszulka męska {color} = {color} men's t-shirt | t-shirt bawełniany = cotton t-shirt
            ja: tシャツ メンズ = men's t-shirt | 半袖 tシャツ {color} = {color} short sleeve t-shirt
            ko: 남자 반팔 티셔츠 = men's short sleeve t-shirt | 무지 티셔츠 {color} = {color} plain t-shirt
            ar: تيشيرت رجالي = men's t-shirt | تي شيرت قطن {color} = {color} cotton t-shirt
        """),
        titles=("Men's 100% Cotton T-Shirt Short Sleeve O-Neck Basic Tee {color}",
                "Oversized T Shirt Men Summer Streetwear Loose Tops",
                "Quick Dry Sports T-Shirt Men Gym Running Shirt {color}"),
    ),
    Product(
        key="winter_jacket",
        paths=("men's clothing,jackets & coats,parkas", "men's clothing,jackets & coats"),
        queries=query_templates("""
            en: mens winter jacket | puffer jacket {color}
            es: chaqueta invierno hombre = men's winter jacket | plumifero {color} = {color} puffer jacket
            fr: doudoune homme {color} = {color} men's puffer jacket | parka homme hiver = men's winter parka
            pt: jaqueta de frio masculina = men's winter jacket | jaqueta puffer {color} = {color} puffer jacket
            it: piumino uomo {color} = {color} men's down jacket | giubbotto invernale = winter jacket
            de: winterjacke herren = men's winter jacket | daunenjacke {color} = {color} down jacket
            pl: kurtka zimowa męska = men's winter jacket | kurtka puchowa {color} = {color} down jacket
            ja: ダウンジャケット メンズ = men's down jacket | 冬 コート {color} = {color} winter coat
            ko: 남자 패딩 = men's padded jacket | 롱패딩 {color} = {color} long padded jacket
            ar: جاكيت شتوي رجالي = men's winter jacket | جاكيت منفوخ {color} = {color} puffer jacket
        """),
        titles=("Men's Winter Parka Thick Warm Hooded Puffer Jacket Windproof Coat {color}",
                "Lightweight Down Jacket Men Packable Duck Down Coat",
                "Winter Jacket Men Fur Collar Cotton Padded Outerwear {color}"),
    ),
    Product(
        key="running_shoes",
        paths=("shoes,women's shoes,women's sneakers", "sports & entertainment,sneakers,running shoes"),
        sizes=WOMEN_SHOE_SIZES,
        queries=query_templates("""
            en: running shoes women {size} | {color} sneakers women
            es: zapatillas running mujer = women's running shoes | tenis mujer {color} = {color} women's sneakers
            fr: chaussures de course femme = women's running shoes | baskets femme {color} {size} = {color} women's sneakers size {size}
            pt: tênis feminino {color} = {color} women's sneakers | tenis de corrida {size} = running shoes size {size}
            it: scarpe da corsa donna = women's running shoes | sneakers donna {color} = {color} women's sneakers
            de: laufschuhe damen {size} = women's running shoes size {size} | sneaker damen {color} = {color} women's sneakers
            pl: buty do biegania damskie = women's running shoes | adidasy damskie {color} = {color} women's sneakers
            ja: ランニングシューズ レディース = women's running shoes | スニーカー レディース {color} = {color} women's sneakers
            ko: 여성 런닝화 = women's running shoes | 여자 운동화 {color} = {color} women's sneakers
            ar: حذاء رياضي نسائي = women's sports shoes | كوتشي حريمي {size} = women's sneakers size {size}
        """),
        titles=("Women Running Shoes Breathable Mesh Lightweight Sneakers Outdoor Walking {color}",
                "Fashion Platform Sneakers Women Casual Vulcanized Shoes",
                "Ladies Sports Shoes Air Cushion Jogging Trainers {color}"),
    ),
    Product(
        key="womens_sandals",
        paths=("shoes,women's shoes,women's sandals", "shoes,women's shoes"),
        sizes=WOMEN_SHOE_SIZES,
        queries=query_templates("""
            en: womens sandals {size} | flat sandals {color}
            es: sandalias mujer {color} = {color} women's sandals | sandalias planas = flat sandals
            fr: sandales femme {size} = women's sandals size {size} | nu-pieds été = summer sandals
            pt: sandália feminina {color} = {color} women's sandals | rasteirinha = flat sandals
            it: sandali donna {color} = {color} women's sandals | sandali bassi estivi = flat summer sandals
            de: sommer sandalen damen = women's summer sandals | sandaletten {color} = {color} sandals
            pl: sandały damskie {color} = {color} women's sandals | sandałki płaskie = flat sandals
            ja: サンダル レディース = women's sandals | フラットサンダル {color} = {color} flat sandals
            ko: 여성 샌들 = women's sandals | 플랫 샌들 {color} = {color} flat sandals
            ar: صندل حريمي = women's sandals | صنادل نسائية {color} = {color} women's sandals
        """),
        titles=("Women Flat Sandals Summer Beach Shoes Casual Open Toe Slides {color}",
                "Platform Wedge Sandals Women Buckle Strap Roman Sandals",
                "Ladies Leather Sandals Soft Sole Comfortable Summer Shoes {color}"),
    ),
    Product(
        key="mens_boots",
        paths=("shoes,men's shoes,men's boots", "shoes,men's shoes"),
        sizes=MEN_SHOE_SIZES,
        queries=query_templates("""
            en: mens boots {size} | leather boots men
            es: botas hombre {size} = men's boots size {size} | botas de cuero = leather boots
            fr: bottes homme = men's boots | chaussures montantes cuir = high-top leather shoes
            pt: bota masculina {color} = {color} men's boots | coturno = combat boots
            it: stivaletti uomo = men's ankle boots | scarponcini pelle = leather boots
            de: herren stiefel {size} = men's boots size {size} | winterstiefel herren = men's winter boots
            pl: buty zimowe męskie = men's winter shoes | trapery męskie = men's work boots
            ja: ブーツ メンズ = men's boots | ワークブーツ = work boots
            ko: 남자 워커 = men's work boots | 남성 부츠 {size} = men's boots size {size}
            ar: بوت رجالي = men's boots | جزمة جلد رجالي = men's leather boots
        """),
        titles=("Men's Leather Boots Winter Warm Ankle Boots Lace Up Work Shoes {color}",
                "Chelsea Boots Men Suede Slip On Casual Boots",
                "Waterproof Hiking Boots Men Outdoor Tactical Combat Boots {color}"),
    ),
    Product(
        key="slippers",
        paths=("shoes,women's shoes,women's slippers", "shoes,men's shoes,men's slippers"),
        sizes=WOMEN_SHOE_SIZES,
        queries=query_templates("""
            en: house slippers | fluffy slippers {color}
            es: pantuflas {color} = {color} slippers | zapatillas de casa = house slippers
            fr: chaussons {color} = {color} slippers | pantoufles femme = women's slippers
            pt: pantufa = slippers | chinelo de quarto = bedroom slippers
            it: pantofole donna = women's slippers | ciabatte {color} = {color} slippers
            de: hausschuhe {size} = slippers size {size} | pantoffeln {color} = {color} slippers
            pl: kapcie = slippers | papcie damskie {color} = {color} women's slippers
            ja: スリッパ = slippers | ルームシューズ {color} = {color} room shoes
            ko: 실내화 = indoor slippers | 털 슬리퍼 {color} = {color} fluffy slippers
            ar: شبشب بيتي = house slippers | شبشب فرو {color} = {color} fur slippers
        """),
        titles=("Winter Warm Plush Slippers Women Fluffy Indoor House Shoes {color}",
                "Cloud Slippers Thick Sole Soft EVA Slides Men Women",
                "Cute Cartoon Home Slippers Non-slip Bedroom Shoes {color}"),
    ),
    Product(
        key="bed_sheets",
        paths=("home & garden,home textile,bedding,bedding sets",
               "home & garden,home textile,bedding,sheets"),
        queries=query_templates("""
            en: bed sheets queen | bedding set {color}
            es: sabanas {color} = {color} bed sheets | juego de cama 150 = bedding set for 150 cm bed
            fr: parure de lit = bedding set | draps {color} = {color} bed sheets
            pt: jogo de cama casal = double bed sheet set | lençol {color} = {color} bed sheet
            it: lenzuola matrimoniali = double bed sheets | copripiumino {color} = {color} duvet cover
            de: bettwäsche 135x200 = 135x200 bedding | spannbettlaken {color} = {color} fitted sheet
            pl: pościel 160x200 = 160x200 bedding | prześcieradło {color} = {color} bed sheet
            ja: シーツ セット = sheet set | 布団カバー {color} = {color} duvet cover
            ko: 침대 이불 세트 = bed duvet set | 침대 시트 {color} = {color} bed sheet
            ar: مفارش سرير = bed sheets | طقم ملايات {color} = {color} sheet set
        """),
        titles=("Bedding Set Duvet Cover Queen King Size Bed Sheet Pillowcases {color}",
                "100% Cotton Fitted Sheet With Elastic Mattress Cover",
                "Luxury Satin Bed Sheets Set 4pcs Silky Bedding {color}"),
    ),
    Product(
        key="curtains",
        paths=("home & garden,home textile,window treatments,curtains",
               "home & garden,home textile,window treatments"),
        queries=query_templates("""
            en: blackout curtains {color} | curtains for living room
            es: cortinas opacas = blackout curtains | cortinas salon {color} = {color} living room curtains
            fr: rideaux occultants = blackout curtains | voilage {color} = {color} sheer curtain
            pt: cortina blackout = blackout curtain | cortina para sala {color} = {color} living room curtain
            it: tende oscuranti = blackout curtains | tende soggiorno {color} = {color} living room curtains
            de: vorhänge blickdicht = opaque curtains | gardinen {color} = {color} curtains
            pl: zasłony zaciemniające = blackout curtains | firanki {color} = {color} sheer curtains
            ja: 遮光カーテン = blackout curtains | レースカーテン {color} = {color} lace curtains
            ko: 암막 커튼 = blackout curtains | 거실 커튼 {color} = {color} living room curtains
            ar: ستائر بلاك اوت = blackout curtains | برادي {color} = {color} curtains
        """),
        titles=("Blackout Curtains For Living Room Bedroom Thermal Insulated Window Drapes {color}",
                "Sheer Voile Tulle Curtain Modern Window Panel",
                "Linen Look Curtains Grommet Top Semi Blackout {color}"),
    ),
    Product(
        key="kitchen_knife",
        paths=("home & garden,kitchen, dining & bar,kitchen knives & accessories,kitchen knives",
               "home & garden,kitchen, dining & bar,kitchen knives & accessories"),
        queries=query_templates("""
            en: chef knife | kitchen knife set
            es: cuchillo de cocina = kitchen knife | set cuchillos japoneses = japanese knife set
            fr: couteau de cuisine = kitchen knife | couteau japonais = japanese knife
            pt: faca de cozinha = kitchen knife | jogo de facas = knife set
            it: coltello da cucina = kitchen knife | set coltelli = knife set
            de: küchenmesser = kitchen knife | messerset damast = damascus knife set
            pl: nóż kuchenny = kitchen knife | zestaw noży = knife set
            ja: 包丁 = kitchen knife | 三徳包丁 = santoku knife
            ko: 식칼 = kitchen knife | 주방 칼 세트 = kitchen knife set
            ar: سكاكين مطبخ = kitchen knives | طقم سكاكين = knife set
        """),
        titles=("Professional Chef Knife 8 Inch Stainless Steel Kitchen Knives Sharp Cleaver",
                "Damascus Kitchen Knife Set 5 PCS Japanese Santoku Knife With Wood Handle",
                "Kitchen Knife Set With Block Non-stick Coating Knives {color}"),
    ),
    Product(
        key="storage_box",
        paths=("home & garden,home storage & organization,storage boxes & bins",
               "home & garden,home storage & organization"),
        queries=query_templates("""
            en: storage box with lid | {color} storage bins
            es: caja organizadora = organizer box | cajas de almacenaje {color} = {color} storage boxes
            fr: boîte de rangement = storage box | panier de rangement {color} = {color} storage basket
            pt: caixa organizadora = organizer box | organizador de gaveta = drawer organizer
            it: scatole portaoggetti = storage boxes | contenitori salvaspazio {color} = {color} space saving containers
            de: aufbewahrungsbox mit deckel = storage box with lid | aufbewahrungskorb {color} = {color} storage basket
            pl: pudełko do przechowywania = storage box | organizer do szafy = wardrobe organizer
            ja: 収納ボックス = storage box | 収納ケース {color} = {color} storage case
            ko: 수납함 = storage box | 리빙박스 {color} = {color} storage box
            ar: صندوق تخزين = storage box | منظم ادراج = drawer organizer
        """),
        titles=("Foldable Storage Box With Lid Fabric Clothes Organizer Bins {color}",
                "Plastic Drawer Organizer Desk Storage Box Makeup Container",
                "Stackable Storage Baskets Closet Organizer Set {color}"),
    ),
    Product(
        key="lipstick",
        paths=("beauty & health,makeup,lips,lipstick", "beauty & health,makeup,lips"),
        queries=query_templates("""
            en: matte lipstick | {color} lipstick
            es: labial mate = matte lipstick | pintalabios {color} = {color} lipstick
            fr: rouge à lèvres mat = matte lipstick | rouge à lèvres {color} = {color} lipstick
            pt: batom matte = matte lipstick | batom {color} = {color} lipstick
            it: rossetto opaco = matte lipstick | rossetto {color} = {color} lipstick
            de: lippenstift matt = matte lipstick | lippenstift {color} = {color} lipstick
            pl: pomadka matowa = matte lipstick | szminka {color} = {color} lipstick
            ja: 口紅 = lipstick | リップ マット {color} = {color} matte lip
            ko: 립스틱 = lipstick | 매트 립스틱 {color} = {color} matte lipstick
            ar: روج مطفي = matte lipstick | احمر شفاه {color} = {color} lipstick
        """),
        titles=("Matte Lipstick Waterproof Long Lasting Velvet Lip Stick Makeup {color}",
                "Lip Tint Liquid Lipstick Non-stick Cup Lip Gloss 6 Colors",
                "Moisturizing Lipstick Nude Shades Cosmetics {color}"),
    ),
    Product(
        key="hair_straightener",
        paths=("beauty & health,hair care & styling,styling tools,straightening irons",
               "home appliances,personal care appliances,hair straighteners"),
        queries=query_templates("""
            en: hair straightener | flat iron
            es: plancha de pelo = hair straightener | plancha alisadora = straightening iron
            fr: lisseur cheveux = hair straightener | fer à lisser = straightening iron
            pt: chapinha de cabelo = hair straightener | prancha alisadora = straightening iron
            it: piastra per capelli = hair straightener | piastra lisciante = straightening iron
            de: glätteisen = straightening iron | haarglätter = hair straightener
            pl: prostownica do włosów = hair straightener | prostownica = straightener
            ja: ヘアアイロン ストレート = straight hair iron | ストレートアイロン = straightening iron
            ko: 고데기 = hair iron | 매직기 = hair straightener
            ar: مكواة شعر = hair straightener | مكواة فرد الشعر = hair straightening iron
        """),
        titles=("Professional Hair Straightener Ceramic Flat Iron 2 In 1 Curling Iron",
                "Cordless Mini Hair Straightener USB Rechargeable Flat Iron",
                "Negative Ion Straightening Brush Hot Comb Hair Straightener {color}"),
    ),
    Product(
        key="electric_toothbrush",
        paths=("beauty & health,oral hygiene,electric toothbrushes",
               "home appliances,personal care appliances,electric toothbrushes"),
        queries=query_templates("""
            en: electric toothbrush | sonic toothbrush {color}
            es: cepillo de dientes electrico = electric toothbrush | cepillo electrico sonico = sonic electric toothbrush
            fr: brosse à dents électrique = electric toothbrush | brosse a dent sonique = sonic toothbrush
            pt: escova de dente elétrica = electric toothbrush | escova elétrica {color} = {color} electric toothbrush
            it: spazzolino elettrico = electric toothbrush | spazzolino sonico {color} = {color} sonic toothbrush
            de: elektrische zahnbürste = electric toothbrush | schallzahnbürste = sonic toothbrush
            pl: szczoteczka elektryczna = electric toothbrush | szczoteczka soniczna {color} = {color} sonic toothbrush
            ja: 電動歯ブラシ = electric toothbrush | 音波歯ブラシ = sonic toothbrush
            ko: 전동칫솔 = electric toothbrush | 음파 전동칫솔 = sonic electric toothbrush
            ar: فرشاة اسنان كهربائية = electric toothbrush | فرشاة كهربائية = electric brush
        """),
        titles=("Sonic Electric Toothbrush Rechargeable IPX7 Waterproof 6 Modes With 4 Brush Heads {color}",
                "Ultrasonic Electric Toothbrush For Adults Smart Timer USB Charging",
                "Kids Electric Toothbrush Cartoon Soft Bristles {color}"),
    ),
    Product(
        key="face_serum",
        paths=("beauty & health,skin care,face,serum", "beauty & health,skin care"),
        queries=query_templates("""
            en: vitamin c serum | hyaluronic acid serum
            es: serum facial = face serum | serum vitamina c = vitamin c serum
            fr: sérum visage = face serum | sérum acide hyaluronique = hyaluronic acid serum
            pt: sérum facial = face serum | sérum de vitamina c = vitamin c serum
            it: siero viso = face serum | siero acido ialuronico = hyaluronic acid serum
            de: gesichtsserum = face serum | hyaluron serum = hyaluronic serum
            pl: serum do twarzy = face serum | serum z witaminą c = vitamin c serum
            ja: 美容液 = beauty serum | ビタミンc 美容液 = vitamin c serum
            ko: 세럼 = serum | 비타민c 앰플 = vitamin c ampoule
            ar: سيروم للوجه = face serum | سيروم فيتامين سي = vitamin c serum
        """),
        titles=("Vitamin C Face Serum Whitening Brightening Anti Aging Essence 30ml",
                "Hyaluronic Acid Serum Moisturizing Shrink Pores Facial Essence",
                "Retinol Serum Anti Wrinkle Firming Face Skin Care"),
    ),
    Product(
        key="car_phone_holder",
        paths=("automobiles, parts & accessories,interior accessories,car phone holders",
               "phones & telecommunications,mobile phone accessories,phone holders & stands"),
        queries=query_templates("""
            en: car phone holder | magnetic car mount
            es: soporte movil coche = car phone holder | soporte magnetico para auto = magnetic car holder
            fr: support téléphone voiture = car phone holder | support magnétique voiture = magnetic car mount
            pt: suporte celular carro = car phone holder | suporte veicular magnético = magnetic car holder
            it: porta cellulare auto = car phone holder | supporto magnetico auto = magnetic car mount
            de: handyhalterung auto = car phone holder | kfz handyhalter magnet = magnetic car phone holder
            pl: uchwyt na telefon do samochodu = car phone holder | uchwyt samochodowy magnetyczny = magnetic car holder
            ja: 車載ホルダー = car holder | スマホホルダー 車 = car phone holder
            ko: 차량용 핸드폰 거치대 = car phone holder | 차량 거치대 = car mount
            ar: حامل جوال للسيارة = car phone holder | ستاند موبايل عربية = car phone stand
        """),
        titles=("Magnetic Car Phone Holder Air Vent Mount For iPhone Samsung Xiaomi",
                "Gravity Car Phone Holder Dashboard Stand 360 Rotation",
                "Wireless Charger Car Mount 15W Fast Charging Phone Holder"),
    ),
    Product(
        key="car_seat_covers",
        paths=("automobiles, parts & accessories,interior accessories,automobiles seat covers",
               "automobiles, parts & accessories,interior accessories"),
        models=CAR_MODELS,
        queries=query_templates("""
            en: car seat covers {model} | leather seat covers
            es: fundas asientos coche {model} = {model} car seat covers | fundas de asiento universales = universal seat covers
            fr: housse siège voiture {model} = {model} car seat cover | housses de siège auto = car seat covers
            pt: capa de banco {model} = {model} seat cover | capas de banco automotivo = car seat covers
            it: coprisedili auto {model} = {model} car seat covers | coprisedili universali = universal seat covers
            de: sitzbezüge auto {model} = {model} car seat covers | schonbezüge = protective seat covers
            pl: pokrowce na siedzenia {model} = {model} seat covers | pokrowce samochodowe = car seat covers
            ja: シートカバー {model} = {model} seat cover | 車 シートカバー = car seat cover
            ko: {model} 시트커버 = {model} seat cover | 자동차 시트커버 = car seat cover
            ar: تلبيسة كراسي {model} = {model} seat covers | كسوة مقاعد سيارة = car seat covers
        """),
        titles=("Car Seat Covers For {model} PU Leather Full Set Front Rear Cushion {color}",
                "Universal Fit Seat Cover Set Breathable Fabric Protector For {model}",
                "Custom Fit Leather Seat Covers {model} Waterproof Interior Accessories"),
    ),
    Product(
        key="led_headlight_bulbs",
        paths=("automobiles, parts & accessories,car lights,car headlight bulbs(led)",
               "automobiles, parts & accessories,car lights"),
        models=BULB_TYPES,
        queries=query_templates("""
            en: led headlight bulbs {model} | {model} led bulb
            es: bombillas led {model} = {model} led bulbs | focos led coche {model} = {model} car led lights
            fr: ampoule led {model} = {model} led bulb | kit led {model} voiture = {model} car led kit
            pt: lâmpada led {model} = {model} led bulb | super led {model} = {model} super led
            it: lampadine led {model} = {model} led bulbs | kit led {model} auto = {model} car led kit
            de: led scheinwerfer {model} = {model} led headlight | {model} led birnen = {model} led bulbs
            pl: żarówki led {model} = {model} led bulbs | led {model} do auta = {model} led for car
            ja: {model} led バルブ = {model} led bulb | led ヘッドライト {model} = {model} led headlight
            ko: {model} led 전조등 = {model} led headlight | led 헤드라이트 {model} = {model} led headlight
            ar: لمبات ليد {model} = {model} led bulbs | كشافات ليد سيارة {model} = {model} car led lights
        """),
        titles=("{model} LED Headlight Bulbs 20000LM 6000K White Canbus Car Lamp",
                "2PCS Super Bright {model} LED Bulb Fog Light Plug And Play",
                "Mini {model} LED Car Headlights Turbo Fan 12V"),
    ),
    Product(
        key="dash_cam",
        paths=("automobiles, parts & accessories,car electronics,dvr/dash camera",
               "automobiles, parts & accessories,car electronics"),
        queries=query_templates("""
            en: dash cam | dashcam front and rear
            es: camara coche = car camera | camara para auto grabadora = car recording camera
            fr: dashcam voiture = car dashcam | caméra embarquée = onboard camera
            pt: câmera veicular = vehicle camera | camera para carro gravadora = car recording camera
            it: telecamera auto = car camera | dash cam anteriore e posteriore = front and rear dash cam
            de: dashcam auto = car dashcam | autokamera vorne hinten = front and rear car camera
            pl: wideorejestrator = dash cam | kamera samochodowa = car camera
            ja: ドライブレコーダー = dash cam | ドラレコ 前後 = front and rear dash cam
            ko: 블랙박스 = dash cam | 차량용 블랙박스 2채널 = 2-channel car dash cam
            ar: كاميرا سيارة = car camera | داش كام = dash cam
        """),
        titles=("Dash Cam Front And Rear 4K WiFi Car DVR Night Vision Video Recorder",
                "Mini Car Camera 1080P Hidden Dashcam Loop Recording G-sensor",
                "Mirror Dash Cam 10 Inch Touch Screen Rearview Camera"),
    ),
    Product(
        key="yoga_mat",
        paths=("sports & entertainment,fitness & body building,yoga,yoga mats",
               "sports & entertainment,fitness & body building,yoga"),
        queries=query_templates("""
            en: yoga mat {color} | thick exercise mat
            es: esterilla yoga = yoga mat | colchoneta ejercicio {color} = {color} exercise mat
            fr: tapis de yoga {color} = {color} yoga mat | tapis de sol fitness = fitness floor mat
            pt: tapete de yoga = yoga mat | colchonete academia {color} = {color} gym mat
            it: tappetino yoga {color} = {color} yoga mat | materassino fitness = fitness mat
            de: yogamatte {color} = {color} yoga mat | gymnastikmatte rutschfest = non-slip gym mat
            pl: mata do jogi {color} = {color} yoga mat | mata do ćwiczeń = exercise mat
            ja: ヨガマット = yoga mat | トレーニングマット 厚手 = thick training mat
            ko: 요가매트 = yoga mat | 두꺼운 운동 매트 = thick exercise mat
            ar: مات يوجا = yoga mat | سجادة رياضة {color} = {color} exercise mat
        """),
        titles=("TPE Yoga Mat 6mm Non Slip Exercise Mat With Position Line {color}",
                "Extra Thick NBR Fitness Mat 10mm Gym Pilates Mat",
                "Foldable Travel Yoga Mat Natural Rubber {color}"),
    ),
    Product(
        key="fishing_reel",
        paths=("sports & entertainment,fishing,fishing reels", "sports & entertainment,fishing"),
        models=REEL_SIZES,
        queries=query_templates("""
            en: spinning reel {model} | baitcasting reel
            es: carrete de pesca {model} = {model} fishing reel | carrete spinning = spinning reel
            fr: moulinet spinning {model} = {model} spinning reel | moulinet pêche mer = sea fishing reel
            pt: molinete {model} = {model} spinning reel | carretilha pesca = baitcasting reel
            it: mulinello spinning {model} = {model} spinning reel | mulinello da pesca = fishing reel
            de: angelrolle {model} = {model} fishing reel | stationärrolle = spinning reel
            pl: kołowrotek {model} = {model} fishing reel | kołowrotek spinningowy = spinning reel
            ja: スピニングリール {model} = {model} spinning reel | ベイトリール = baitcasting reel
            ko: 스피닝릴 {model} = {model} spinning reel | 베이트릴 = baitcasting reel
            ar: مكنة صيد {model} = {model} fishing reel | بكرة صيد سمك = fishing reel
        """),
        titles=("Spinning Fishing Reel {model} Series 5.2:1 Metal Spool Saltwater Reel",
                "Baitcasting Reel 7.2:1 Carbon Drag Fishing Reel {color}",
                "Ultralight Spinning Reel {model} Carbon Fiber Fishing Wheel"),
    ),
    Product(
        key="bike_light",
        paths=("sports & entertainment,cycling,bicycle light",
               "sports & entertainment,cycling,bicycle accessories"),
        queries=query_templates("""
            en: bike light usb rechargeable | bicycle front light
            es: luz bicicleta = bicycle light | luces led para bici = led bike lights
            fr: éclairage vélo = bike lighting | lampe vélo usb = usb bike lamp
            pt: farol bike = bike headlight | lanterna para bicicleta = bicycle flashlight
            it: luci bici led = led bike lights | fanale bicicletta = bicycle headlight
            de: fahrradlicht = bicycle light | fahrradbeleuchtung set stvzo = stvzo bike light set
            pl: lampka rowerowa = bike light | oświetlenie rowerowe led = led bike lighting
            ja: 自転車 ライト = bicycle light | 自転車ライト usb充電 = usb rechargeable bicycle light
            ko: 자전거 라이트 = bicycle light | 자전거 후미등 = bicycle tail light
            ar: كشاف دراجة = bicycle light | اضاءة دراجة هوائية = bicycle lighting
        """),
        titles=("Bike Light Set USB Rechargeable Front Headlight And Rear Taillight Waterproof",
                "Bicycle Front Light 1000 Lumen LED Flashlight MTB Lamp",
                "Smart Bike Tail Light Brake Sensing Rear Lamp"),
    ),
    Product(
        key="camping_tent",
        paths=("sports & entertainment,camping & hiking,tents", "sports & entertainment,camping & hiking"),
        sizes=TENT_PERSONS,
        queries=query_templates("""
            en: camping tent {size} person | pop up tent
            es: tienda de campaña {size} personas = {size} person camping tent | carpa camping = camping tent
            fr: tente camping {size} places = {size} person camping tent | tente pop up = pop up tent
            pt: barraca de camping {size} pessoas = {size} person camping tent | barraca impermeável = waterproof tent
            it: tenda campeggio {size} posti = {size} person camping tent | tenda da spiaggia = beach tent
            de: zelt {size} personen = {size} person tent | wurfzelt = pop up tent
            pl: namiot {size} osobowy = {size} person tent | namiot turystyczny = hiking tent
            ja: テント {size}人用 = {size} person tent | ワンタッチテント = instant tent
            ko: 캠핑 텐트 {size}인용 = {size} person camping tent | 원터치 텐트 = instant tent
            ar: خيمة رحلات = camping tent | خيمة {size} اشخاص = {size} person tent
        """),
        titles=("Outdoor Camping Tent Waterproof Double Layer Family Tent With Rainfly {color}",
                "Automatic Pop Up Tent Instant Setup Beach Sun Shelter",
                "Ultralight Backpacking Tent Windproof Hiking Tent {color}"),
    ),
    Product(
        key="building_blocks",
        paths=("toys & hobbies,building & construction toys,blocks",
               "toys & hobbies,building & construction toys"),
        queries=query_templates("""
            en: building blocks | lego compatible technic car
            es: bloques de construcción = building blocks | bloques tipo lego = lego-style blocks
            fr: jeu de construction = construction toy | briques compatibles lego = lego compatible bricks
            pt: blocos de montar = building blocks | lego compatível = lego compatible
            it: mattoncini compatibili lego = lego compatible bricks | costruzioni per bambini = building toys for kids
            de: klemmbausteine = clamping building blocks | bausteine kompatibel mit lego = lego compatible building blocks
            pl: klocki konstrukcyjne = construction blocks | klocki kompatybilne z lego = lego compatible blocks
            ja: ブロック おもちゃ = block toy | レゴ 互換 = lego compatible
            ko: 레고 호환 블록 = lego compatible blocks | 블록 장난감 = block toy
            ar: مكعبات ليغو = lego blocks | العاب تركيب = building toys
        """),
        titles=("Technic Sports Car Building Blocks 1280 PCS MOC Bricks Toys For Kids",
                "City Police Station Building Block Set Compatible Bricks Gift",
                "Creative Classic Bricks Bulk 1000 Pieces Building Blocks Kids Toys"),
    ),
    Product(
        key="rc_car",
        paths=("toys & hobbies,remote control toys,rc cars", "toys & hobbies,remote control toys"),
        queries=query_templates("""
            en: rc car | remote control car for kids
            es: coche teledirigido = remote control car | carro control remoto = remote control car
            fr: voiture télécommandée = remote control car | voiture rc 4x4 = 4x4 rc car
            pt: carrinho de controle remoto = remote control toy car | carro rc 4x4 = 4x4 rc car
            it: macchina radiocomandata = radio controlled car | auto telecomandata = remote control car
            de: ferngesteuertes auto = remote control car | rc auto offroad = offroad rc car
            pl: samochód zdalnie sterowany = remote control car | auto na pilota = car with remote
            ja: ラジコンカー = radio control car | ラジコン オフロード = offroad radio control car
            ko: rc카 = rc car | 무선 조종 자동차 = remote control car
            ar: سيارة ريموت كنترول = remote control car | عربية بالريموت = car with remote
        """),
        titles=("RC Car 1:16 4WD Off Road Remote Control Truck High Speed Drift Car Toys",
                "2.4G Remote Control Car Stunt Car 360 Rotating Kids Toy {color}",
                "Brushless RC Car 1:14 70KM/H Racing Monster Truck"),
    ),
    Product(
        key="plush_toy",
        paths=("toys & hobbies,stuffed animals & plush,stuffed & plush animals",
               "toys & hobbies,stuffed animals & plush"),
        models=PLUSH_CHARACTERS,
        queries=query_templates("""
            en: {model} plush | giant teddy bear
            es: peluche {model} = {model} plush | muñeco de peluche = stuffed toy
            fr: doudou {model} = {model} cuddly toy | peluche géante = giant plush
            pt: pelúcia {model} = {model} plush | bicho de pelúcia = stuffed animal
            it: peluche {model} gigante = giant {model} plush | pupazzo di peluche = plush puppet
            de: kuscheltier {model} = {model} cuddly toy | plüschtier groß = large plush animal
            pl: pluszak {model} = {model} plush | maskotka pluszowa = plush mascot
            ja: {model} ぬいぐるみ = {model} stuffed toy | ぬいぐるみ 大きい = big stuffed toy
            ko: {model} 인형 = {model} doll | 대형 곰인형 = giant teddy bear
            ar: دبدوب {model} = {model} teddy | العاب قطنية = plush toys
        """),
        titles=("Cute {model} Plush Toy Soft Stuffed Animal Doll Kids Birthday Gift",
                "30cm Kawaii {model} Plushie Pillow Cartoon Anime Doll",
                "Giant Teddy Bear Plush Toy 80cm Big Stuffed Bear {color}"),
    ),
    Product(
        key="necklace",
        paths=("jewelry & accessories,necklaces & pendants,pendant necklaces",
               "jewelry & accessories,necklaces & pendants"),
        queries=query_templates("""
            en: gold necklace women | heart pendant necklace
            es: collar mujer plata = women's silver necklace | colgante corazon = heart pendant
            fr: collier femme = women's necklace | pendentif coeur or = gold heart pendant
            pt: colar feminino = women's necklace | corrente de prata = silver chain
            it: collana donna argento = women's silver necklace | ciondolo cuore = heart pendant
            de: halskette damen = women's necklace | kette mit anhänger gold = gold necklace with pendant
            pl: naszyjnik damski = women's necklace | łańcuszek srebrny = silver chain
            ja: ネックレス レディース = women's necklace | ハート ネックレス = heart necklace
            ko: 여자 목걸이 = women's necklace | 실버 목걸이 = silver necklace
            ar: سلسلة ذهب = gold chain | قلادة نسائية = women's necklace
        """),
        titles=("925 Sterling Silver Heart Pendant Necklace For Women Fine Jewelry",
                "Stainless Steel Gold Plated Chain Necklace Minimalist Choker",
                "Vintage Pearl Pendant Necklace Women Wedding Jewelry"),
    ),
    Product(
        key="earrings",
        paths=("jewelry & accessories,earrings,stud earrings", "jewelry & accessories,earrings"),
        queries=query_templates("""
            en: stud earrings | hoop earrings gold
            es: pendientes mujer = women's earrings | aretes de plata = silver earrings
            fr: boucles d'oreilles = earrings | créoles or = gold hoop earrings
            pt: brincos femininos = women's earrings | brinco de argola = hoop earring
            it: orecchini donna = women's earrings | orecchini a cerchio = hoop earrings
            de: ohrringe silber = silver earrings | ohrstecker damen = women's stud earrings
            pl: kolczyki damskie = women's earrings | kolczyki srebrne = silver earrings
            ja: ピアス レディース = women's earrings | イヤリング = clip-on earrings
            ko: 귀걸이 = earrings | 링 귀걸이 = hoop earrings
            ar: حلق ذهب = gold earrings | اقراط نسائية = women's earrings
        """),
        titles=("925 Sterling Silver Stud Earrings Cubic Zirconia Women Jewelry",
                "Gold Plated Hoop Earrings Chunky Huggie Earrings For Women",
                "Pearl Drop Earrings Elegant Bridal Jewelry"),
    ),
    Product(
        key="ring",
        paths=("jewelry & accessories,rings", "jewelry & accessories,fine jewelry,rings"),
        sizes=RING_SIZES,
        queries=query_templates("""
            en: silver ring women size {size} | engagement ring
            es: anillo de plata = silver ring | anillo de compromiso = engagement ring
            fr: bague femme argent = women's silver ring | bague de fiançailles = engagement ring
            pt: anel de prata = silver ring | anel de noivado = engagement ring
            it: anello argento donna = women's silver ring | anello di fidanzamento = engagement ring
            de: ring silber damen = women's silver ring | verlobungsring = engagement ring
            pl: pierścionek zaręczynowy = engagement ring | pierścionek srebrny = silver ring
            ja: 指輪 レディース = women's ring | リング シルバー {size}号 = silver ring size {size}
            ko: 반지 = ring | 커플링 = couple rings
            ar: خاتم فضة = silver ring | دبلة خطوبة = engagement ring
        """),
        titles=("925 Sterling Silver Ring For Women Adjustable Open Ring Fine Jewelry",
                "Moissanite Engagement Ring 1ct Solitaire Wedding Band",
                "Stainless Steel Couple Rings Simple Band For Men Women"),
    ),
    Product(
        key="mens_quartz_watch",
        paths=("watches,men's watches,quartz watches", "watches,men's watches"),
        queries=query_templates("""
            en: mens watch | quartz watch {color}
            es: reloj hombre = men's watch | reloj de pulsera {color} = {color} wristwatch
            fr: montre homme = men's watch | montre quartz {color} = {color} quartz watch
            pt: relógio masculino = men's watch | relógio de pulso {color} = {color} wristwatch
            it: orologio uomo = men's watch | orologio da polso {color} = {color} wristwatch
            de: herrenuhr = men's watch | armbanduhr herren {color} = {color} men's wristwatch
            pl: zegarek męski = men's watch | zegarek na rękę {color} = {color} wristwatch
            ja: 腕時計 メンズ = men's wristwatch | クォーツ 腕時計 = quartz wristwatch
            ko: 남자 손목시계 = men's wristwatch | 메탈 시계 = metal watch
            ar: ساعة رجالي = men's watch | ساعة يد {color} = {color} wristwatch
        """),
        titles=("Men's Quartz Watch Stainless Steel Waterproof Luminous Business Wristwatch {color}",
                "Luxury Chronograph Watch For Men Leather Strap Sport Watches",
                "Minimalist Ultra Thin Men Watch Mesh Band Quartz Clock {color}"),
    ),
    Product(
        key="watch_band",
        paths=("watches,watch accessories,watch bands", "watches,watch accessories"),
        models=WATCH_MODELS,
        queries=query_templates("""
            en: {model} band | {model} strap {color}
            es: correa {model} = {model} strap | pulsera {model} {color} = {color} {model} band
            fr: bracelet {model} = {model} band | bracelet montre cuir = leather watch strap
            pt: pulseira {model} = {model} band | pulseira de relógio = watch band
            it: cinturino {model} = {model} strap | cinturino orologio pelle = leather watch strap
            de: armband {model} = {model} band | uhrenarmband leder = leather watch band
            pl: pasek do {model} = strap for {model} | pasek do zegarka = watch strap
            ja: {model} バンド = {model} band | 時計 ベルト 交換 = replacement watch strap
            ko: {model} 스트랩 = {model} strap | 시계줄 = watch strap
            ar: استيك {model} = {model} strap | سوار ساعة = watch band
        """),
        titles=("Silicone Band For {model} Strap Sport Bracelet Replacement Wristband {color}",
                "Milanese Loop Strap For {model} Magnetic Metal Band",
                "Nylon Sport Loop For {model} Soft Breathable Watch Strap {color}"),
    ),
)


# Sibling categories no product of the catalogue is listed under, two under each group of two levels:
# the near misses a search engine files a query under when it gets the group right and the leaf wrong.
DECOY_LEAVES = {
    "phones & telecommunications,mobile phone accessories": ("phone lanyards", "selfie sticks"),
    "consumer electronics,power source": ("batteries", "solar panels"),
    "phones & telecommunications,mobile phones": ("feature phones", "refurbished phones"),
    "consumer electronics,earphones & headphones": ("earphone accessories", "wired earphones"),
    "consumer electronics,smart electronics": ("smart home", "smart glasses"),
    "watches,smart watches": ("kids smart watches", "smart watch chargers"),
    "consumer electronics,portable audio & video": ("microphones", "mp3 players"),
    "computer & office,mouse & keyboards": ("mouse pads", "keyboard covers"),
    "computer & office,external storage": ("hard drive enclosures", "memory card readers"),
    "computer & office,laptop accessories": ("laptop stands", "laptop cooling pads"),
    "luggage & bags,laptop bags": ("laptop backpacks", "briefcases"),
    "women's clothing,dresses": ("evening dresses", "wedding dresses"),
    "women's clothing,bottoms": ("skirts", "jeans"),
    "sports & entertainment,fitness & body building": ("resistance bands", "dumbbells"),
    "women's clothing,swimwear": ("cover-ups", "one-piece suits"),
    "women's clothing,tops & tees": ("tank tops", "camis"),
    "men's clothing,hoodies & sweatshirts": ("zip-up hoodies", "sweatshirt sets"),
    "men's clothing,tops & tees": ("polo shirts", "tank tops"),
    "men's clothing,jackets & coats": ("blazers", "down jackets"),
    "shoes,women's shoes": ("women's pumps", "women's boots"),
    "sports & entertainment,sneakers": ("basketball shoes", "skateboarding shoes"),
    "shoes,men's shoes": ("men's casual shoes", "men's sandals"),
    "home & garden,home textile": ("towels", "cushion covers"),
    "home & garden,kitchen, dining & bar": ("cookware", "drinkware"),
    "home & garden,home storage & organization": ("hangers & racks", "storage bags"),
    "beauty & health,makeup": ("eyes", "makeup brushes"),
    "beauty & health,hair care & styling": ("hair masks", "wigs"),
    "home appliances,personal care appliances": ("hair dryers", "electric shavers"),
    "beauty & health,oral hygiene": ("toothpaste", "dental floss"),
    "beauty & health,skin care": ("sunscreen", "body care"),
    "automobiles, parts & accessories,interior accessories": ("steering wheel covers", "car air fresheners"),
    "automobiles, parts & accessories,car lights": ("fog lights", "car tail lights"),
    "automobiles, parts & accessories,car electronics": ("car chargers", "car radios"),
    "sports & entertainment,fishing": ("fishing lures", "fishing rods"),
    "sports & entertainment,cycling": ("bicycle helmets", "cycling jerseys"),
    "sports & entertainment,camping & hiking": ("sleeping bags", "hiking backpacks"),
    "toys & hobbies,building & construction toys": ("magnetic blocks", "model building kits"),
    "toys & hobbies,remote control toys": ("rc drones", "rc boats"),
    "toys & hobbies,stuffed animals & plush": ("plush pillows", "plush keychains"),
    "jewelry & accessories,necklaces & pendants": ("chain necklaces", "chokers"),
    "jewelry & accessories,earrings": ("hoop earrings", "drop earrings"),
    "jewelry & accessories,rings": ("engagement rings", "band rings"),
    "jewelry & accessories,fine jewelry": ("fine earrings", "fine bracelets"),
    "watches,men's watches": ("mechanical watches", "digital watches"),
    "watches,watch accessories": ("watch boxes", "watch repair tools"),
}


@dataclass(frozen=True)
class SearchQuery:
    """A rendered query: what the user typed, what it means in English, and what it asks for."""

    text: str
    language: str
    english: str
    product: Product
    model: tuple[str, str] | None
    color: str | None
    cheap: bool = False
    misspelt: bool = False


def catalogue_paths(catalogue: tuple[Product, ...]) -> list[str]:
    """Every path a product is listed under, then the decoy siblings."""
    listed = list(dict.fromkeys(path for product in catalogue for path in product.paths))
    return listed + [f"{group},{leaf}" for group, leaves in DECOY_LEAVES.items() for leaf in leaves]


def check_catalogue(catalogue: tuple[Product, ...]) -> None:
    """Fail early on a template whose slots the product cannot fill or whose English drops a slot."""
    for product in catalogue:
        slots = {"color"} | ({"model"} if product.models else set()) | ({"size"} if product.sizes else set())
        for language, templates in product.queries.items():
            for template in templates:
                native_slots = set(PLACEHOLDER.findall(template.native))
                if not native_slots <= slots or native_slots != set(PLACEHOLDER.findall(template.english)):
                    raise ValueError(f"{product.key} {language} template {template.native!r}: bad slots")
        for path in product.paths:
            if not all(category_levels(path)):
                raise ValueError(f"{product.key}: empty level in {path!r}")
    groups = {",".join(category_levels(path)[:2]) for product in catalogue for path in product.paths}
    if groups != set(DECOY_LEAVES):
        raise ValueError(f"decoy siblings missing for {sorted(groups - set(DECOY_LEAVES))}, "
                         f"or given for unknown groups {sorted(set(DECOY_LEAVES) - groups)}")
    listed = {path for product in catalogue for path in product.paths}
    if clash := listed & set(catalogue_paths(catalogue)[len(listed):]):
        raise ValueError(f"a decoy is a listed path: {sorted(clash)}")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def misspell(text: str, rng: random.Random) -> str:
    """One typing slip: accents left out, or a letter dropped, doubled or swapped with its neighbour."""
    if strip_accents(text) != text and rng.random() < 0.5:
        return strip_accents(text)
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not candidates:
        return text
    index = rng.choice(candidates)
    word = words[index]
    position = rng.randrange(1, len(word) - 1)
    slip = rng.choice(("drop", "double", "swap"))
    if slip == "drop":
        word = word[:position] + word[position + 1:]
    elif slip == "double":
        word = word[:position] + word[position] + word[position:]
    else:
        word = word[:position] + word[position + 1] + word[position] + word[position + 2:]
    words[index] = word
    return " ".join(words)


def render_query(product: Product, language: str, rng: random.Random) -> SearchQuery:
    template = rng.choice(product.queries[language])
    model = rng.choice(product.models) if "{model}" in template.native else None
    size = rng.choice(product.sizes) if "{size}" in template.native else ""
    color = rng.choice(list(COLORS)) if "{color}" in template.native else None
    text = template.native.format(model=model[0] if model else "", size=size,
                                  color=COLORS[color][language] if color else "")
    english = template.english.format(model=model[0] if model else "", size=size, color=color or "")
    cheap = rng.random() < CHEAP_SHARE
    if cheap:
        text = CHEAP_PATTERNS[language].format(query=text)
        english = f"cheap {english}"
    misspelt = False
    if language in LATIN_LANGUAGES:
        if rng.random() < TYPO_SHARE:
            typed = misspell(text, rng)
            misspelt, text = typed != text, typed
        if rng.random() < CAPITALISED_SHARE:
            text = text[0].upper() + text[1:]
    return SearchQuery(text, language, english, product, model, color, cheap, misspelt)


def is_relevant_path(product: Product, path: str) -> bool:
    """A path is relevant when the product is listed under it or under one of its subcategories."""
    levels = category_levels(path)
    return any(category_levels(own)[: len(levels)] == levels for own in product.paths)


def positive_share(query: SearchQuery) -> float:
    """How likely a target shown for this query is relevant: lower for vague, cheap or misspelt queries."""
    share = SPECIFIC_POSITIVE_SHARE if query.model or query.color else VAGUE_POSITIVE_SHARE
    return share - NOISY_QUERY_PENALTY * (query.cheap + query.misspelt)


def negative_pull(targets: list[str], rng: random.Random) -> dict[str, float]:
    """How often each target is drawn as a wrong answer: 1/rank^exponent over a seeded order."""
    order = list(targets)
    rng.shuffle(order)
    return {target: 1.0 / (rank + 1) ** NEGATIVE_PULL_EXPONENT for rank, target in enumerate(order)}


def category_targets(query: SearchQuery, rows: int, all_paths: list[str], pull: dict[str, float],
                     rng: random.Random) -> list[tuple[str, int]]:
    """Up to ``rows`` distinct (category_path, label) pairs; a positive with no unused path left is dropped.

    A query gets at most one row more than it has relevant paths, so that positives rarely run out and
    the positive rate stays near the query's positive share.
    """
    product = query.product
    relevant = [path for path in all_paths if is_relevant_path(product, path)]
    rows = min(rows, len(relevant) + 1)
    irrelevant = [path for path in all_paths if not is_relevant_path(product, path)]
    same_top_level = [path for path in irrelevant if category_levels(path)[0] == product.top_level]
    own_groups = {category_levels(path)[:2] for path in product.paths}
    siblings = [path for path in irrelevant if category_levels(path)[:2] in own_groups]
    targets: list[tuple[str, int]] = []
    for _ in range(rows):
        used = [path for path, _ in targets]
        if rng.random() < positive_share(query):
            unused = [path for path in relevant if path not in used]
            if unused:
                targets.append((rng.choice(unused), 1))
            continue
        near = [path for path in siblings if path not in used]
        hard = [path for path in same_top_level if path not in used]
        if near and rng.random() < SIBLING_NEGATIVE_SHARE:
            pool = near
        else:
            pool = [path for path in (hard if hard and rng.random() < HARD_NEGATIVE_SHARE else irrelevant)
                    if path not in used]
        targets.append((rng.choices(pool, [pull[path] for path in pool])[0], 0))
    return targets


def item_title(product: Product, rng: random.Random, model: tuple[str, str] | None = None,
               color: str | None = None) -> str:
    """A listing title for the product; a model the query names must appear in the title."""
    titles = [title for title in product.titles if "{model}" in title] if model else list(product.titles)
    model = model or (rng.choice(product.models) if product.models else ("", ""))
    title = rng.choice(titles).format(model=model[1], color=(color or rng.choice(list(COLORS))).title())
    return rng.choice(LISTING_PREFIXES) + title


def item_targets(query: SearchQuery, rows: int, catalogue: tuple[Product, ...], pull: dict[str, float],
                 rng: random.Random) -> list[tuple[str, int]]:
    """Up to ``rows`` (item_title, label) pairs with distinct titles."""
    product = query.product
    others = [other for other in catalogue if other is not product]
    same_top_level = [other for other in others if other.top_level == product.top_level]

    def draw_title(label: int) -> str:
        if label:
            return item_title(product, rng, query.model, query.color)
        if query.model and len(product.models) > 1 and rng.random() < OTHER_MODEL_SHARE:
            other_models = [model for model in product.models if model != query.model]
            return item_title(product, rng, rng.choice(other_models))
        pool = same_top_level if same_top_level and rng.random() < HARD_NEGATIVE_SHARE else others
        return item_title(rng.choices(pool, [pull[other.key] for other in pool])[0], rng)

    targets: list[tuple[str, int]] = []
    for _ in range(rows):
        label = int(rng.random() < positive_share(query))
        # A few tries, because products with few title variants repeat a title now and then.
        for _ in range(5):
            title = draw_title(label)
            if title not in [existing for existing, _ in targets]:
                targets.append((title, label))
                break
    return targets


def draw_query(catalogue: tuple[Product, ...], registry: dict[str, SearchQuery], taken: set[str],
               rng: random.Random) -> SearchQuery:
    """A query not yet used in this task whose text means the same thing wherever else it occurs."""
    for _ in range(1000):
        query = render_query(rng.choice(catalogue), rng.choice(LANGUAGES), rng)
        known = registry.get(query.text)
        if query.text in taken or (known is not None and
                                   (known.product is not query.product or known.english != query.english)):
            continue
        registry.setdefault(query.text, query)
        taken.add(query.text)
        return query
    raise RuntimeError("the catalogue has run out of distinct queries")


def task_rows(task: str, size: int, registry: dict[str, SearchQuery], taken: set[str],
              rng: random.Random) -> list[tuple[SearchQuery, str, int]]:
    """``size`` (query, target, label) rows, several per query, before noise and shuffling."""
    all_paths = catalogue_paths(CATALOGUE)
    counts, weights = zip(*ROWS_PER_QUERY_WEIGHTS.items(), strict=True)
    pull = negative_pull(all_paths if task == "QC" else [product.key for product in CATALOGUE], rng)
    rows: list[tuple[SearchQuery, str, int]] = []
    while len(rows) < size:
        query = draw_query(CATALOGUE, registry, taken, rng)
        wanted = rng.choices(counts, weights)[0]
        if task == "QC":
            targets = category_targets(query, wanted, all_paths, pull, rng)
        else:
            targets = item_targets(query, wanted, CATALOGUE, pull, rng)
        rows.extend((query, target, label) for target, label in targets)
    return rows[:size]


def to_records(task: str, rows: list[tuple[SearchQuery, str, int]], first_id: int, labelled: bool,
               rng: random.Random) -> list[dict]:
    """Shuffled competition-format records; labelled ones get label noise, unlabelled ones no label."""
    rows = list(rows)
    rng.shuffle(rows)
    target_field = "category_path" if task == "QC" else "item_title"
    records = []
    for offset, (query, target, label) in enumerate(rows):
        record = {"id": first_id + offset, "task": task, "language": query.language,
                  "origin_query": query.text, target_field: target}
        if labelled:
            record["label"] = 1 - label if rng.random() < LABEL_NOISE else label
        records.append(record)
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_translations(path: Path, records: list[dict], registry: dict[str, SearchQuery]) -> int:
    """Write ``query<TAB>english`` for every distinct non-English query; return how many lines.

    A query with capitals is also written lower-cased, the form it has after relctl's cleaning step.
    """
    english_of: dict[str, str] = {}
    for record in records:
        if record["language"] == "en":
            continue
        text = record["origin_query"]
        for key in (text, text.lower()):
            if english_of.setdefault(key, registry[text].english) != registry[text].english:
                raise ValueError(f"{key!r} would have two English translations")
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("query\tenglish\n")
        for key in sorted(english_of):
            if any(c in field for field in (key, english_of[key]) for c in "\t\n\r"):
                raise ValueError(f"tab or newline inside the translation of {key!r}")
            out.write(f"{key}\t{english_of[key]}\n")
    return len(english_of)


def summary(name: str, records: list[dict]) -> str:
    per_query = Counter(record["origin_query"] for record in records)
    shared = sum(count for count in per_query.values() if count > 1)
    line = f"{name}: {len(records)} rows, {len(per_query)} queries, {shared} rows share a query"
    if "label" in records[0]:
        positives = sum(record["label"] for record in records)
        line += f", positive rate {positives / len(records):.3f}"
    return line


def make_demo_data(out: Path, seed: int) -> None:
    check_catalogue(CATALOGUE)
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    registry: dict[str, SearchQuery] = {}
    everything: list[dict] = []
    for task in ("QC", "QI"):
        # Test queries never occur in the same task's training file, as in a held-out test set.
        taken: set[str] = set()
        train = to_records(task, task_rows(task, TRAIN_ROWS, registry, taken, rng), 1, True, rng)
        test = to_records(task, task_rows(task, TEST_ROWS, registry, taken, rng), TRAIN_ROWS + 1, False, rng)
        for split, records in (("train", train), ("test", test)):
            name = f"{task.lower()}_{split}.jsonl"
            write_jsonl(out / name, records)
            print(summary(name, records))
        everything += train + test
    translated = write_translations(out / "translations.tsv", everything, registry)
    print(f"translations.tsv: {translated} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7,
                        help="random seed; the same seed gives identical files")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data",
                        help="folder to write the files into (default: data/ next to this script)")
    args = parser.parse_args()
    make_demo_data(args.out, args.seed)


if __name__ == "__main__":
    main()
