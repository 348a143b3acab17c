"""Build tests/data/filter/forum.jsonl: a forum-scrape fixture for the filter quality benchmark.

    python bench/make_forum_fixture.py            # rewrites tests/data/filter/forum.jsonl

Raw forum data (a Tieba best-of dump, Douban groups, NGA) turned into question-answer records:
the thread's title or first post is the instruction, a reply the output. Each record carries
`_label` ("junk" or "real") and `_kind` (what it is), so that bench/filter_quality.py can count
what the default rules reject and keep per kind. The kinds are those issue 16 lists:

junk: forum filler and slang replies (cy, gkd, 插眼, 666, +1, 1, 3, 码住, 蹲, 同求, dd, 前排,
      路过, mark, 顶, 沙发, 楼上正解...) with the punctuation and emoji people add; outputs made
      only of punctuation, emoji or symbols; bare numbers and two-character replies to open
      questions; zalgo spam (Thai and Arabic marks stacked on spaces, a "water" filler pasted
      many times, combining-mark text); contact solicitations with any 7+ digit number or an id.
real: the short answers that are right (A, 选C, 对, 不是, 3, 0.5, 北京, 1949年) to choice,
      yes/no, maths, fill-in and short-answer questions; ordinary forum answers to open
      questions, also with emoji, decorative ～～～ and 。。。, English phrases for learners, a
      list of English paper titles, 砍一刀 as a metaphor, 月入过万 in a list of baking gear.

Deterministic (a fixed seed): the same file every run. The records are written for this
benchmark, not scraped: no real person's number or id is in them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "filter" / "forum.jsonl"

OPEN_QUESTIONS = [
    "求推荐几部好看的悬疑电影", "考研英语怎么复习比较好？", "新手养猫需要准备什么东西",
    "大家觉得这个发型怎么样", "分享一下我家的多肉", "第一次去成都旅游有什么建议",
    "手机充电很慢是什么原因", "推荐一个适合上班族的健身计划", "怎么才能坚持早起",
    "刚毕业工资低，怎么理财", "求一份简单的红烧肉做法", "电脑开机蓝屏怎么办",
    "今天终于拿到驾照了！", "周末去爬山拍的照片", "如何提高写作水平",
    "说说你们最近在看的书", "自学 Python 从哪里开始", "租房要注意哪些坑",
    "孩子不爱吃饭怎么办", "怎么挑选一个好的西瓜", "求助：猫咪一直打喷嚏",
    "楼主最近失恋了，求安慰", "周末组队打游戏，来的报名", "吐槽一下今天的地铁",
    "说说对这个楼盘的看法", "长期熬夜对身体有什么影响", "如何缓解颈椎病",
]

FILLER = [
    "cy", "gkd", "插眼", "666", "+1", "1", "3", "码住", "蹲", "同求", "dd", "前排", "路过",
    "mark", "顶", "沙发", "楼上正解", "顶顶顶", "帮顶", "mk", "马住", "插个眼", "蹲一个",
    "坐等更新", "求更", "催更", "同问", "我也想知道", "火钳刘明", "留名", "前排围观", "吃瓜",
    "签到", "打卡", "水一贴", "学习了", "谢谢楼主", "感谢分享", "收藏了", "先马后看", "赞",
    "点赞", "好帖", "nb", "牛逼", "tql", "yyds", "awsl", "哈哈哈", "hhh", "2333", "xswl",
    "笑死", "绝了", "呵呵", "卧槽", "楼主好人", "dddd", "up", "ding", "66666", "+10086",
    "同求+1", "楼上+1", "二楼正解", "求链接", "求资源", "私信", "已阅", "ok", "嗯嗯", "11",
    "33", "蹲后续", "抢沙发", "板凳", "占楼",
]
DECOR = ["", "", "！", "!!", "~", "。", "👀", "+1", "😂", "…", "？", " ", "～"]

SYMBOLS_ONLY = [
    "。", "？？？", "……", "😂", "👍", "👍👍👍", "🙏", "😭😭", "!!!", "~~~", "→_→", "(＾▽＾)",
    "o(╥﹏╥)o", "？", "。。。", "————", "💯", "🔥🔥", "🐶", "[]", "^_^", "……。", "???!!!",
    "(*^▽^*)", "✌️", "❤️❤️", "🌹", "☆☆☆", "☺", "~", "——", "！！", "+", "//", "??",
    "😅", "🤔", "🍉🍉", ":)", "orz。",
]

SHORT_JUNK = [
    "3", "1", "23", "88", "555", "0", "110", "12", "7", "2",
    "好看", "可以", "还行", "随便", "不行", "一般", "是啊", "懂", "牛", "嗯", "哦", "啊这",
    "离谱", "真的", "确实", "绝绝子", "无语", "就这", "hh", "lol", "okk", "emm",
]

THAI = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c"
ARABIC = "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652"
LATIN = "".join(chr(c) for c in range(0x300, 0x36f))


def zalgo(rng: random.Random, text: str, marks: str, per: tuple[int, int]) -> str:
    return "".join(c + "".join(rng.choice(marks) for _ in range(rng.randint(*per)))
                   for c in text)


def water(rng: random.Random) -> str:
    unit = "水" + " " + "".join(rng.choice(THAI) for _ in range(rng.randint(1, 3)))
    return (unit + " ") * rng.randint(8, 40)


CONTACT = [
    "有需要的可以打我电话{n}咨询", "有需要的朋友联系我{n}", "需要的加我{n}，价格好商量",
    "联系我：{n}，包教包会", "加我{n}，免费送资料", "有需要的可以打我电话 {n} 咨询，全天在线",
    "找我办证，电话{n}", "有需要的私我 {n}", "有需要的亲联系 {n}", "私我{n}拿资源",
    "加我 vx：{id}，备注来意", "有需要的加我微信 {id}", "联系我 qq：{n}", "加我扣扣{n}领取",
    "有需要的找我，微信号：{id}",
]


def number(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:  # a mobile with a prefix the PII rule does not know
        return "1" + str(rng.choice([0, 1, 2])) + "".join(str(rng.randrange(10)) for _ in range(9))
    if kind == 1:  # a landline with its area code and a dash
        return "0" + str(rng.randint(10, 999)) + "-" + "".join(str(rng.randrange(10)) for _ in range(7))
    if kind == 2:  # spaced
        d = "".join(str(rng.randrange(10)) for _ in range(11))
        return f"{d[:3]} {d[3:7]} {d[7:]}"
    if kind == 3:  # seven or eight digits
        return "".join(str(rng.randrange(10)) for _ in range(rng.choice([7, 8])))
    return "".join(str(rng.randrange(10)) for _ in range(rng.randint(9, 10)))


def ident(rng: random.Random) -> str:
    letters = "abcdefghijkmnpqrstuvwxyz"
    return (rng.choice(letters) + "".join(rng.choice(letters + "0123456789_")
                                          for _ in range(rng.randint(6, 11))))


CHOICE = [
    ("下列哪个城市是中国的首都？\nA. 上海\nB. 北京\nC. 广州\nD. 深圳", ["B", "选B", "B。", "答案是B"]),
    ("以下哪种动物是哺乳动物？A.鲨鱼 B.鲸鱼 C.海龟 D.章鱼", ["B", "B项", "b"]),
    ("单选题：光在真空中的速度约为（ ）\nA. 3×10^5 km/s\nB. 3×10^8 km/s\nC. 340 m/s", ["A", "选A"]),
    ("下列词语中没有错别字的一项是\nA. 既往不究\nB. 再接再励\nC. 迫不及待\nD. 一愁莫展", ["C", "C。", "选C"]),
    ("多选：下列属于可再生能源的是 A.太阳能 B.煤炭 C.风能 D.石油", ["AC", "A、C", "选AC"]),
    ("这道题选哪个？(A) 1  (B) 2  (C) 3  (D) 4", ["C", "D", "选D"]),
    ("以下哪项不是唐代诗人？\nA 李白\nB 杜甫\nC 苏轼\nD 王维", ["C", "C 苏轼", "苏轼"]),
    ("Which of the following is a prime number? A. 9 B. 15 C. 17 D. 21", ["C", "C. 17"]),
    ("下列说法正确的是：①水往低处流 ②太阳从西边升起 ③地球是圆的", ["①③", "①③。"]),
]
YESNO = [
    ("地球是圆的吗？", ["是", "是的", "对", "是。"]),
    ("判断：鲸鱼是鱼类。", ["错", "不对", "错误", "×"]),
    ("这个说法对不对：水在100℃一定沸腾", ["不对", "不一定对", "错"]),
    ("猫能吃巧克力吗", ["不能", "不能！", "不可以"]),
    ("请判断两句话意思是否相同（输出“是”或“不是”）：1. 花呗能用吗 2. 花呗可以用吗", ["是", "不是"]),
    ("高铁上可以带充电宝吗？", ["可以", "可以的", "能"]),
    ("明天会不会下雨？", ["不会", "会"]),
    ("太阳是恒星吗", ["是", "对"]),
    ("Is water wet?", ["Yes", "yes."]),
    ("这家店周末有没有营业", ["有", "没有"]),
]
MATHS = [
    ("1+2等于几？", ["3", "3。", "等于3"]), ("12×12=？", ["144"]), ("100÷4等于多少", ["25"]),
    ("一个数的一半是0.25，这个数是多少？", ["0.5"]), ("解方程：2x+4=10，x=？", ["3", "x=3"]),
    ("一周有几天？", ["7", "7天"]), ("1/2 + 1/4 = ?", ["3/4", "0.75"]),
    ("一年有多少个月", ["12", "12个月"]), ("计算：3的平方是多少", ["9"]),
    ("What is 15 + 27?", ["42"]), ("及格率是多少？30个人里24个及格", ["80%"]),
    ("一个三角形内角和是多少度", ["180", "180度"]), ("2的10次方等于多少", ["1024"]),
]
SHORT = [
    ("中国的首都是哪里？", ["北京", "北京。"]), ("《呐喊》的作者是谁", ["鲁迅"]),
    ("新中国哪一年成立", ["1949年", "1949"]), ("“床前明月光”是谁写的", ["李白"]),
    ("世界上最高的山峰叫什么", ["珠穆朗玛峰", "珠峰"]), ("水的化学式是什么", ["H2O", "H₂O"]),
    ("有人知道这首歌叫什么吗", ["晴天", "是《晴天》"]), ("哪个国家的首都是东京", ["日本"]),
    ("太阳系最大的行星是哪个", ["木星"]), ("这部电影的导演是谁？", ["张艺谋"]),
    ("Who wrote Hamlet?", ["Shakespeare"]), ("请问这是什么花", ["月季", "玫瑰"]),
]
FILL = [
    ("填空：春眠不觉晓，______。", ["处处闻啼鸟"]), ("补全：欲穷千里目，（ ）", ["更上一层楼"]),
    ("填空：中国有____个省级行政区", ["34"]), ("填入恰当的词：他跑得____快", ["很", "非常"]),
    ("填空：光合作用需要____和水", ["二氧化碳", "CO2"]),
]

OPEN_REAL = [
    "建议先去医院查个血常规，别自己乱吃药。",
    "《白夜行》《嫌疑人X的献身》《禁闭岛》都不错，前两部是东野圭吾的。",
    "背单词用艾宾浩斯曲线，阅读每天精读一篇真题，作文提前背模板。",
    "猫砂盆、猫粮、饮水机、猫抓板，再带去打一次疫苗。",
    "宽窄巷子人太多了，推荐去人民公园喝茶，顺便吃一碗冒菜😋",
    "充电头功率不够，或者数据线老化了，换一根试试。",
    "每天跑步三十分钟，加上俯卧撑和平板支撑，坚持一个月就有效果。",
    "晚上十一点前睡，手机放客厅，闹钟放远一点。",
    "先存三到六个月的应急资金，再考虑基金定投。",
    "五花肉切块焯水，冰糖炒糖色，加生抽老抽和八角，小火炖一个小时。",
    "进安全模式把最近装的驱动卸掉，还不行就重装系统。",
    "恭喜恭喜～～～以后可以自驾游啦～～～",
    "风景太美了。。。好想去。。。",
    "多读多写，每天写五百字，读好的散文。",
    "最近在看《三体》，第二部最精彩。",
    "先学基础语法，再做几个小项目，比如爬虫或者自动化脚本。",
    "看清合同里的押金条款，拍下房间原来的样子，问清水电怎么算。",
    "少给零食，饭前带他出去玩一会儿，饿了自然就吃了。",
    "拍一拍听声音，声音清脆的比较熟，纹路清晰的比较甜。",
    "可能是感冒了，注意保暖，两三天不好就带去看兽医。",
    "抱抱楼主，时间会治愈一切的，多出去走走。",
    "我报名，晚上八点上线，ID 发你私信了哈。",
    "真的太挤了，早高峰能错峰就错峰吧。",
    "地段不错，但楼间距太小，价格也偏高，再看看吧。",
    "会导致免疫力下降、记忆力变差，还容易长痘。",
    "每隔一小时起来活动一下脖子，枕头不要太高。",
]
EXTRA_OPEN = [
    ("说说你最近的感悟", "生活有时候就像被人砍了一刀，疼过之后还得站起来往前走。"),
    ("新手学烘焙要买哪些工具", "烘焙入门清单：烤箱、电子秤、打蛋器、裱花袋、硅胶刮刀。很多人说开烘焙店能月入过万，其实没那么容易。"),
    ("分享几句日常英语", "Common phrases for beginners:\nHow are you?\nNice to meet you.\nSee you later.\nThank you very much.\nExcuse me."),
    ("入门深度学习该读什么", "我读过的几篇经典论文：\nAttention Is All You Need\nDeep Residual Learning for Image Recognition\nBERT: Pre-training of Deep Bidirectional Transformers\nGenerative Adversarial Nets"),
    ("周末去哪儿玩了", "今天天气真好！！出去晒太阳☀️☀️"),
    ("晒一下新买的裙子", "太好看了吧😍😍 求同款链接在哪里买的"),
    ("睡醒总是脖子疼", "我也是这样，后来换了个枕头就好了。"),
    ("膝盖疼了一个月了", "建议去正规医院拍个片子，别拖。"),
    ("零基础学画画从哪开始", "同意楼上，先把基础打牢再说。"),
    ("这个牌子的洗衣机怎么样", "不要买，那个牌子售后很差，我踩过坑。"),
    ("照着楼主的方子做了蛋糕", "第一次做就成功了，太有成就感了！"),
    ("学习总是分心怎么办", "可以用番茄工作法，二十五分钟专心，五分钟休息。"),
    ("电脑没声音了求助", "谢谢大家的建议，已经解决了，是驱动的问题。"),
    ("微信闪退怎么解决", "这个问题我也遇到过，更新系统就好了。"),
]


# Written after the rules were tuned on the records above, and not tuned on: how the rules do on
# forum replies they were not shaped by (records with "_split": "held-out").
HELD_OUT_JUNK = [
    ("filler/slang", ["顶上", "前排占座", "来了来了", "路过看看", "mark!", "+1+1", "蹲蹲蹲", "cy!",
                      "gkd gkd", "插眼，回头看", "码", "楼上说得好", "好家伙", "妙啊", "爷青回",
                      "哈哈哈哈哈哈", "6", "111", "同", "收藏一下", "dd一下", "我来晚了", "沙发！",
                      "板凳～", "来顶", "顶一下楼主", "留个脚印", "已三连", "同蹲", "先插眼",
                      "楼上正解！", "支持一下", "学到了学到了", "牛牛牛", "羡慕", "求带",
                      "求私", "蹲个链接", "帮顶一下", "前排！"]),
    ("punctuation/emoji only", ["🤣🤣🤣", "👏", "🙄", "。。", "！", "👌🏻", "？？", "...",
                                "😏😏", "【】", "⊙﹏⊙", "！？", "~~", "😭", "🎉🎉🎉"]),
    ("bare number or too short", ["不好说", "看情况", "随缘", "不知", "没用", "5", "99", "000",
                                  "还好", "有用", "[捂脸]", "可", "行吧", "对啊"]),
    ("contact solicitation", ["需要的朋友可以打我电话 135 0000 1111，随时联系",
                              "代写论文联系我 QQ 2847563910", "有需要的加我微信 ab_cd123",
                              "招聘兼职，联系我 021 6543 2109", "联系我18800001234，低价出",
                              "有需要的朋友可以私我，电话 0755-2345678",
                              "加我vx: tieba_fan2024 拉你进群", "找我代办，手机 199 9999 8888"]),
]
HELD_OUT_REAL = [
    ("choice", "下列哪个是最小的质数？A. 0 B. 1 C. 2 D. 3", ["答案选C", "C", "选项C"]),
    ("choice", "以下属于金属的是（ ）\nA. 铜 B. 木头 C. 塑料 D. 玻璃", ["A", "A项"]),
    ("choice", "下列哪些是偶数 A.2 B.3 C.4 D.5", ["AC", "A和C"]),
    ("yes/no", "熊猫是国宝吗", ["对的", "是"]), ("yes/no", "冬天需要给多肉浇水吗", ["不需要", "要少浇"]),
    ("yes/no", "判断对错：1千克铁比1千克棉花重", ["错", "否"]),
    ("yes/no", "这个车位能停大车吗？", ["不能", "可以"]),
    ("maths", "5-8等于多少", ["-3"]), ("maths", "一本书20元，打八折多少钱", ["16", "16元"]),
    ("maths", "x+3=7，求x", ["x=4", "4"]), ("maths", "几点开会？", ["3", "3点"]),
    ("maths", "一天有多少小时", ["24"]),
    ("short answer", "《静夜思》的作者是谁？", ["李白"]), ("short answer", "中国最长的河流叫什么", ["长江"]),
    ("short answer", "辛亥革命哪一年爆发", ["1911年"]), ("short answer", "演唱会在哪里办", ["上海"]),
    ("fill-in", "填空：白日依山尽，____", ["黄河入海流"]),
    ("open answer", "有什么好用的记账软件", "我一直用表格记，简单直接，每月底汇总一次。"),
    ("open answer", "大家怎么看待加班", "偶尔加班能接受，天天加班就得考虑换工作了🤷"),
    ("open answer", "求安慰，考试没考好", "蹲一个后续，楼主加油！我去年也没考好，今年复习了半年就过了。"),
    ("open answer", "推荐一款耳机", "预算五百以内的话，可以看看国产的降噪耳机，性价比高。"),
    ("open answer", "家里的绿萝叶子发黄怎么办", "可能是浇水太多了，放到通风的地方，等土干了再浇。"),
    ("open answer", "晒晒你们的早餐", "豆浆油条，再来一个茶叶蛋～～～完美"),
    ("open answer", "怎么学好数学", "多做题，错题要整理，搞懂每一步为什么这么做。"),
    ("open answer", "第一次见家长要注意什么", "穿得干净得体，带点水果和茶叶，说话礼貌一点就行。"),
]


# A second set written after the first held-out set had been measured (76.5% of its junk
# rejected before, 90.1% after fixing how question kinds are read and letting fillers join,
# then its missed slang added to filler.txt): "_split": "held-out-2", never tuned on.
HELD_OUT_2_JUNK = [
    ("filler/slang", ["顶楼主", "dd！！", "蹲+1", "同求楼主", "mark一下，谢谢", "插眼。", "前排前排",
                      "666666666", "哈哈哈哈笑死", "tql！", "楼上+1", "好评", "沙发沙发！", "学习了～",
                      "gkd！！！", "路过~", "赞👍", "码住了", "同问+1", "来了", "up up", "cy cy",
                      "xswl", "我也蹲", "先收藏了", "感谢楼主分享", "懂了", "楼主威武", "火前留名",
                      "顶起来"]),
    ("punctuation/emoji only", ["😂😂😂😂", "🙏🙏", "……？", "。。。。", "👍🏻👍🏻", "(ಥ_ಥ)"]),
    ("bare number or too short", ["2", "10", "哈", "好的吧", "不清楚", "还可以"]),
    ("contact solicitation", ["有需要的可以联系我 13700001111", "加我 wx: happy_day88 带你入门",
                              "联系我：0531 8888 0000，专业维修", "有需要的朋友打我电话 1523 4567 890"]),
]
HELD_OUT_2_REAL = [
    ("choice", "下列哪个是哺乳动物 A.蛇 B.狗 C.鸡", ["B"]),
    ("choice", "以下哪一项是正确的？\nA. 1+1=3\nB. 2+2=4", ["B", "选B"]),
    ("yes/no", "鱼会睡觉吗", ["会"]), ("yes/no", "这样做对吗？", ["不对"]),
    ("yes/no", "周日图书馆开门吗", ["开", "不开"]),
    ("maths", "3×7=?", ["21"]), ("maths", "一打鸡蛋有几个", ["12"]), ("maths", "0.5+0.25等于多少", ["0.75"]),
    ("short answer", "《红楼梦》的作者是谁", ["曹雪芹"]), ("short answer", "日本的首都是哪里", ["东京"]),
    ("short answer", "这是什么动物？", ["猫"]),
    ("fill-in", "填空：举头望明月，______", ["低头思故乡"]),
    ("open answer", "怎么去除衣服上的油渍", "用洗洁精先搓一下，再正常洗，效果很好。"),
    ("open answer", "推荐几本入门的经济学书", "《经济学原理》曼昆写的，很适合入门，还有《牛奶可乐经济学》。"),
    ("open answer", "晒一下今天的晚霞", "好美啊～～～ 在哪里拍的？"),
    ("open answer", "第一次养狗要注意什么", "按时打疫苗、驱虫，别喂人吃的东西，多陪它散步。"),
]


def main() -> int:
    rng = random.Random(16)
    recs: list[dict] = []

    def add(instruction: str, output: str, label: str, kind: str) -> None:
        recs.append({"instruction": instruction, "input": "", "output": output,
                     "answer_from": "human", "_label": label, "_kind": kind})

    for word in FILLER:
        for _ in range(2):
            add(rng.choice(OPEN_QUESTIONS), word + rng.choice(DECOR), "junk", "filler/slang")
    for s in SYMBOLS_ONLY:
        add(rng.choice(OPEN_QUESTIONS), s, "junk", "punctuation/emoji only")
    for s in SHORT_JUNK:
        add(rng.choice(OPEN_QUESTIONS), s, "junk", "bare number or too short")
    for _ in range(8):
        add(rng.choice(OPEN_QUESTIONS), water(rng), "junk", "zalgo")
    for text in ("楼主说得对", "hello world", "顶起来", "沙发是我的", "刷屏刷屏"):
        add(rng.choice(OPEN_QUESTIONS), zalgo(rng, text, LATIN, (5, 12)), "junk", "zalgo")
        add(rng.choice(OPEN_QUESTIONS), zalgo(rng, text, THAI + ARABIC, (4, 9)), "junk",
            "zalgo")
    for template in CONTACT:
        for _ in range(2):
            add(rng.choice(OPEN_QUESTIONS), template.format(n=number(rng), id=ident(rng)),
                "junk", "contact solicitation")

    for question, answers in CHOICE:
        for a in answers:
            add(question, a, "real", "choice")
    for question, answers in YESNO:
        for a in answers:
            add(question, a, "real", "yes/no")
    for question, answers in MATHS:
        for a in answers:
            add(question, a, "real", "maths")
    for question, answers in SHORT:
        for a in answers:
            add(question, a, "real", "short answer")
    for question, answers in FILL:
        for a in answers:
            add(question, a, "real", "fill-in")
    for question, answer in zip(OPEN_QUESTIONS, OPEN_REAL):
        add(question, answer, "real", "open answer")
    for question, answer in EXTRA_OPEN:
        add(question, answer, "real", "open answer")

    tuned = len(recs)
    for kind, outputs in HELD_OUT_JUNK:
        for out in outputs:
            add(rng.choice(OPEN_QUESTIONS), out, "junk", kind)
    for kind, question, answers in HELD_OUT_REAL:
        for a in [answers] if isinstance(answers, str) else answers:
            add(question, a, "real", kind)
    for r in recs[tuned:]:
        r["_split"] = "held-out"
    for _ in range(4):
        add(rng.choice(OPEN_QUESTIONS), water(rng).replace("水", "灌"), "junk", "zalgo")
        recs[-1]["_split"] = "held-out"
    second = len(recs)
    for kind, outputs in HELD_OUT_2_JUNK:
        for out in outputs:
            add(rng.choice(OPEN_QUESTIONS), out, "junk", kind)
    for kind, question, answers in HELD_OUT_2_REAL:
        for a in [answers] if isinstance(answers, str) else answers:
            add(question, a, "real", kind)
    for _ in range(3):
        add(rng.choice(OPEN_QUESTIONS), zalgo(rng, "灌水灌水", THAI, (4, 8)), "junk", "zalgo")
    for r in recs[second:]:
        r["_split"] = "held-out-2"
    for r in recs:
        r.setdefault("_split", "tuned")

    rng.shuffle(recs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    junk = sum(r["_label"] == "junk" for r in recs)
    print(f"{OUT}: {len(recs)} records, {junk} junk, {len(recs) - junk} real")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
