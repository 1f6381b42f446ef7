"""Decode the bytes of a user's file: BOMs, UTF-8, and the Chinese legacy encodings told apart by their text.

Chinese Windows and Excel save text as GBK/GB18030 (mainland) or Big5 (Taiwan, Hong Kong). GB18030 decodes
almost any byte sequence, Big5 text included, so trying encodings in turn gives mojibake
(``砐酵癘眤叫ざ残跋``) without an error. Instead every legacy candidate that decodes is scored: the share of
its Chinese characters that are among the ~2,000 most frequent ones (simplified and traditional forms,
ranked by jieba's dictionary frequencies), with kana, box drawing, private-use and control characters
counted against it. Real text scores about 0.9, the wrong decoding about 0.1. When no candidate scores
clearly best, the file is refused with an error that names ``--encoding``: never a silent mojibake.

Files that are not text at all (PDF, Office binaries, zip archives, images) are refused with a message that
says what the file looks like.

>>> text = "訪談者：請問社區怎麼組織居民？受訪者：黨支部帶頭。"
>>> decode(text.encode("big5"), "x.txt") == (text, "big5"), decode(text.encode("gbk"), "x.txt")[1]
(True, 'gb18030')
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from ..exceptions import FormatError

__all__ = ["decode", "score_chinese", "stream_encoding", "read_lines", "LEGACY_ENCODINGS"]

#: Candidates tried (in this order, after UTF-8) when a file has no BOM and is not UTF-8.
LEGACY_ENCODINGS = ("gb18030", "big5", "cp950", "big5hkscs")
_MIN_SCORE = 0.5  # the chosen decoding must read as Chinese at least this well ...
_MIN_MARGIN = 0.25  # ... and this much better than any other decoding
_SAMPLE = 200_000  # characters scored per candidate (the whole text is still decoded strictly)
_PUNCT = frozenset("，。？！：；、“”‘’（）《》…—　")

# The most frequent Chinese characters (jieba's dictionary frequencies, top 1,500 simplified) with their
# traditional forms (OpenCC s2t, s2tw, s2hk).
_COMMON = frozenset(
    "一是人了不在有大中国和为这上他个地年来我会以到时要出的生学说道民家子也成行下们于后就发自之对得主长可过天作分方用多你着部能市等业全里工公经本都而高政法面门动日进区事代那去心小同北定开产前其军还然起种所"
    "如现理机体表力好外与文当两实重新三么只山水关明从化平建又制南内西没此将员名手最东头者月间无安看见各城十相但已些正口通想度加第她合院物性战由位常点海意场武使次二向治因立数样身情入原问把路被并利石老教万知"
    "级量任江及应省资委务元美特期世湖回系比气汉总展电科金先声提品设或义王社很统处四首共马形己儿司太目基领队直计别女权话少流命至报米给打变果书清活几州华解议更称程今决张导术府才保交放管结师便走达族反再题色五"
    "京河接条规式县白它改风光运信受什组听布百济党指论强做取技黄神选记斯真却职号界件花类何眼兵传带空干农边据集联古广完质阳难增历史专官每住商即步认车台林必死游举线言皇土团收考求德叫近备研争非具李众连调感转笑"
    "革该持始英克士尔让拉思根格造较际亲单朝红型价校约器字段周亚深候则功属积快图火千准究往极育装许参半令吃观鱼精办像帝八复影告远群包整构料随划算象容示投势热值夫网望源息语股铁断派速怎需片爱律纪支早况病境证编"
    "越局推满且列觉服双未居除乐企引标确织初青志率项飞球节察龙响药站施均消客失轻存低甚般击曾防请离落显罗营足素视护副食创余照兴占巴虽洲村费易试星木黑左宝置跟央识维采六底宫房音环案批切斗富乡另倒若按查故突责严"
    "桥模仅胜杀围席态破承招杨负层须父供续状域似依银范修找九致密终血旅钱赛独细效玉冲获习医演毛尽脸弹楼艺航陆右协七攻镇检写苏宗章注阿抗弟坐验封紧劳户优财养适陈喜卫排射哥油刻留急降念云微伤例景拿绝阶座刘刚害印"
    "亿沙母酒助闻超审待压升送监策略限竟香配藏敌呢差仍兰温园树征善波哪词岛止预怕继皮执味份角草男普答益谁船惊核街夏宣掌田久著画辑奇尼剑吧谈背免孩礼材愿洋春架筑括晚乱乎讲尚良友临激刀夜室既敢邦挥昌板胡欧福港叶"
    "简苦担句岁荆贵娘守辖威宜衣帮块堂额错剧充欢够孙班呼阵销坚练脚退读测吴希宁换版异某顾曲楚典朱毒菜判救宋茶洪含顺啊鲜败货矿端兄归冷忙买险康评肉吗厂永哈沉散遗停笔假输牛洞松渐顶训录否述毕督控丰献姑忽爷互亮纳"
    "襄登咱钟伯臣雄季脑介鄂召饭暗扩祖齐短烈赶牌恩诉移诗础露届蒙静喝盘卖植授伊湾博痛减穿逐秘庭陵固禁票灵杂姓泽吸侧庆妈遇追甲馆补唐炮沿殿刺怪彩俄旧警索岸轮妇载靠附毫怀软骨探雷旁罪枪牙迎序慢盛雨墙恶谷顿危稳熟"
    "概酸操诸绿佛荣针托宽折野付午肯库厚缺罢耳屋嘴末谢巨培页瓦款犯困店智拥雪翻圣戏旗吉婚奖岩疑币圆歌廷健卡烧析讨跑烟误仙疗舞亡闭汽伸脱秋姐繁侵川莫麻秀借寻私岗卷跳丽横驻套兼您君丁束纸夺袁灯坏坦丝径购阴床瞧择"
    "墓宪峰遍鲁庙掉丹桃御舰避售怒课播拔奥延虚隐粮络遭摇潜庄混厅婆奴鼓赵访睡震予童徐韦殖抓拜吨扬址洛休纵逃染纷贸透汇灭蛋森仪塔距狐融郡缓聚盖拍迹忠释润粉涓孔岭搜紫虑促抵钢塞寺津液码虎坛珍硬梁奔累役偏迫锛凡损"
    "壁哭替税综伦冰盟挂韩竞乌尤弱铺妹秦尊竹珠迅脉泥鬼纯睛刑途隆潮幅杯握谋剂幸奉乘抱朋谓频崇壮骑紝恐享鸡虫绍铜呈泛械摆欲奶敬措爆暴签猛郭嘉障缩亦废搞胞埃曰撤暖寒订俗绩阻盐萨勒忘奏孝贴灰梅触玩默醒胸莲篇柱裁啦"
    "淡抢捕闹纺截讯朗誉雅忍梦伙勇峡徒丈尾迷唱泉泰佳残闪伍呀疾署剩贼冠倾豆申贫诺麦泪羊尖辈镜涉贡爹缘摩妻殊贝零映甘骂糖岳饮奋棉雕跃汗冒渡努赞启阁斤裂患伏池鹿洗劲晋倍圈媒箭沟锋胆凭挑抬闯隔弄曹汤苗迁叹唯振储贯"
    "彻桌祭符僧衡炸旋喊凤黎郎援肥磁忌赏辽祥董仁辛瑞询敏浪貌毁昨巧腿抽荷陷焦净腹弃乃湘亩滑狗冬宏皆番尸伟桂览恢龄绕趣晶坡魏摸伴墨浓绪舍蓝荡阅井鸿旦惯症鸟窗扎辞聘穷堰宇键荒递恨隶厉杜闲腰袭侍灾涨叔湿寨幕豪郑磨"
    "國爲為這個來會時學說説們於後發對長過業裏裡經門動進區開產軍還種現機體與當兩實麼關從內沒將員東頭間無見戰點場數樣問並萬級應資務氣漢總電聲設義統處馬兒領隊計別權話報給變書幾華議稱決張導術結師達題條規縣風運"
    "組聽濟黨論強黃選記卻職號類傳帶幹農邊據聯廣質陽難歷專認車臺遊舉線團備爭衆眾連調轉該爾讓較際親單紅價約亞則屬積圖準極裝許參喫觀魚辦復遠羣構隨劃勢熱網語鐵斷愛紀況證編滿覺雙樂標確織項飛節龍響藥輕擊請離顯羅"
    "營視護創餘興佔雖費試寶識維採宮環鬥鄉責嚴橋僅勝殺圍態楊負層須續狀銀範終錢賽獨細衝獲習醫盡臉彈樓藝陸協鎮檢寫蘇驗緊勞戶優財養適陳衛衞雲傷絕階劉剛億聞審壓監敵蘭溫園樹徵詞島預繼執誰驚畫輯劍談禮願築亂講臨揮"
    "歐葉簡擔歲荊貴轄幫塊額錯劇歡夠孫陣銷堅練腳讀測吳寧換異顧順鮮敗貨礦歸買險評嗎廠遺筆輸漸頂訓錄畢豐獻爺納鍾腦飯擴齊趕訴詩礎屆靜盤賣灣減祕靈雜澤側慶媽館補舊輪婦載懷軟槍牆惡頓穩諸綠榮針寬庫罷謝頁擁聖戲獎巖"
    "幣圓燒討煙誤療閉脫尋崗麗橫駐紙奪燈壞絲徑購陰牀擇憲峯魯廟艦課奧虛隱糧絡搖潛莊廳趙訪韋噸揚縱紛貿匯滅儀緩蓋跡釋潤嶺慮鋼碼壇錛損稅綜倫掛韓競烏鋪脈純謀劑謂頻壯騎雞蟲紹銅擺籤縮廢訂績鹽薩貼觸蓮搶鬧紡訊譽夢夥"
    "峽殘閃賊傾貧諾麥淚輩鏡貢緣貝罵嶽飲奮躍贊啓啟閣勁晉溝鋒膽憑闖湯遷嘆儲貫徹鳳賞遼詢毀淨棄畝屍偉覽齡繞濃緒藍蕩閱閲鴻慣鳥辭窮鍵遞隸厲閒襲災漲溼濕鄭"
)

_SIGNATURES = (
    (b"%PDF", "a PDF file", "Export its text first (open it in Word and save as .docx, or copy the text into a "
                            ".txt file); a scanned PDF needs OCR"),
    (b"PK\x03\x04", "a zip archive (an Office file or a .qdpx project under another name?)",
     "Give Word files the .docx suffix, Excel files .xlsx, QDA projects .qdpx"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (.doc/.xls)", "Save it as .docx/.xlsx or as text"),
    (b"{\\rtf", "an RTF file", "Save it as .docx or .txt"),
    (b"\x89PNG", "a PNG image", "Give the transcript as .txt or .docx"),
    (b"\xff\xd8\xff", "a JPEG image", "Give the transcript as .txt or .docx"),
    (b"GIF8", "a GIF image", "Give the transcript as .txt or .docx"),
    (b"SQLite format 3\x00", "an SQLite database", "A QualCoder project is read as .qda"),
)


def score_chinese(text: str) -> tuple[float, int]:
    """How much ``text`` reads as Chinese: ``(share of frequent characters, characters judged)``.

    Frequent Chinese characters and Chinese punctuation count for it; rare ideographs, kana, Hangul, box
    drawing, Greek/Cyrillic, private-use and control characters against it; ASCII is not judged.

    >>> score_chinese("我们社区有党支部。")
    (1.0, 9)
    >>> round(score_chinese("砐酵癘眤叫ざ残跋")[0], 2)
    0.25
    """
    good = bad = 0
    for ch in text[:_SAMPLE]:
        o = ord(ch)
        if o < 0x80:
            if o < 0x20 and ch not in "\r\n\t\f":
                bad += 1
        elif ch in _COMMON or ch in _PUNCT:
            good += 1
        elif (0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or o >= 0x20000 or 0xE000 <= o <= 0xF8FF
              or 0x3040 <= o <= 0x30FF or 0x3100 <= o <= 0x312F or 0xAC00 <= o <= 0xD7AF
              or 0x2500 <= o <= 0x257F or 0x370 <= o <= 0x4FF or 0x80 <= o <= 0xFF or 0xFE30 <= o <= 0xFE4F
              or 0xFF61 <= o <= 0xFF9F):
            bad += 1
    n = good + bad
    return (good / n if n else 0.0), n


def _refuse_binary(data: bytes, path) -> None:
    head = data[:16]
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            raise FormatError(f"This is {what}, not a text file. {fix}.", path)
    sample = data[:4096]
    if b"\x00" in sample:
        raise FormatError("This is a binary file, not text (it holds NUL bytes). Give a .txt, .docx, .csv or "
                          ".xlsx file (a UTF-16 text file needs its BOM: save it again as UTF-8).", path)


def decode(data: bytes, path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """Decode the bytes of a text file; return ``(text, encoding)`` with any BOM removed.

    With ``encoding`` given, that encoding (strictly). Otherwise: a UTF-8 or UTF-16 BOM decides; then strict
    UTF-8; then whichever of GB18030 (GBK, GB2312) and Big5 (CP950, HKSCS) decodes the bytes as clearly the
    more plausible Chinese text (:func:`score_chinese`).

    Raises
    ------
    FormatError
        When the file is binary (PDF, Office, zip, image), when no candidate decodes it, or when none is
        clearly right; the message names ``--encoding``.
    """
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise FormatError(f"Unknown encoding {encoding!r}. Use e.g. utf-8, gb18030, big5.", path) from None
        except UnicodeDecodeError as err:
            raise FormatError(
                f"Cannot decode as {encoding}: {err.reason} at byte {err.start}. "
                "Leave --encoding out to detect UTF-8/GB18030/Big5, or name the right one.",
                path,
            ) from None
        return text.lstrip("\ufeff"), encoding
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig", path), "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _strict(data, "utf-16", path), "utf-16"
    _refuse_binary(data, path)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    decoded: dict[str, str] = {}
    for enc in LEGACY_ENCODINGS:
        if enc != "gb18030" and any(e != "gb18030" for e in decoded):
            break  # one Big5 variant is enough
        try:
            decoded[enc] = data.decode(enc)
        except UnicodeDecodeError:
            continue
    if not decoded:
        raise FormatError(
            "Cannot decode the file as UTF-8, GB18030 or Big5. Save it as UTF-8, or name its encoding with "
            "--encoding (encoding= in Python).",
            path,
        )
    scored = sorted(((score_chinese(text)[0], enc) for enc, text in decoded.items()), reverse=True)
    best, enc = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best < _MIN_SCORE or best - runner_up < _MIN_MARGIN:
        tried = ", ".join(f"{e} {s:.2f}" for s, e in scored)
        raise FormatError(
            f"Cannot tell the file's encoding: it is not UTF-8, and no Chinese encoding reads it clearly best "
            f"(share of common characters: {tried}). Name it with --encoding (e.g. --encoding big5 or "
            "--encoding gb18030), or save the file as UTF-8.",
            path,
        )
    return decoded[enc], ("big5" if enc in ("cp950", "big5hkscs") and "big5" not in decoded else enc)


def _strict(data: bytes, encoding: str, path) -> str:
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as err:
        raise FormatError(
            f"The file starts with a {encoding.removesuffix('-sig').upper()} byte-order mark but cannot be "
            f"decoded as {encoding.removesuffix('-sig')}: {err.reason} at byte {err.start}. Save it again, or name "
            "its encoding with --encoding.",
            path,
        ) from None


_CHUNK = 1 << 20  # bytes decoded at a time when a file is streamed


def stream_encoding(path: str | Path, encoding: str | None = None) -> str:
    """The codec to read ``path`` line by line (:func:`read_lines`) so that it gives the text :func:`decode`
    gives, checked by decoding the file once in chunks; the same errors as :func:`decode`.

    Only a file that is not UTF-8 (nor ``encoding``) is read whole, once, to tell GB18030 from Big5: name
    its encoding to stream it.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    codec = encoding
    if codec is None:
        if head.startswith(b"\xef\xbb\xbf"):
            codec = "utf-8"
        elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
            codec = "utf-16"
        else:
            _refuse_binary(head, path)
            codec = "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(codec)()
    except LookupError:
        decoder = None
    if decoder is not None:
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return codec
        except UnicodeDecodeError:
            pass
    data = path.read_bytes()
    text, _ = decode(data, path, encoding)  # raises what a user would see, or tells the legacy encoding
    return next(c for c in LEGACY_ENCODINGS if _decodes_as(data, c, text))  # the one decode chose


def _decodes_as(data: bytes, codec: str, text: str) -> bool:
    try:
        return data.decode(codec).lstrip("\ufeff") == text
    except UnicodeDecodeError:
        return False


def read_lines(path: str | Path, codec: str) -> Iterator[str]:
    """The lines of a text file (line ends kept, as ``open(newline="")`` gives them) decoded with ``codec``
    (:func:`stream_encoding`), a leading byte-order mark removed."""
    with open(path, encoding=codec, newline="") as f:
        first = True
        for line in f:
            if first:
                line = line.lstrip("\ufeff")
                first = False
            yield line
